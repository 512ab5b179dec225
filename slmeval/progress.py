"""One progress-bar helper (rich) so every long loop looks and behaves the same."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)


@contextmanager
def progress_bar(description: str, total: int, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yields advance(n). Disabled (or non-interactive with nothing to show) → a no-op."""
    if not enabled or total == 0:
        yield lambda n=1: None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, transient=False) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n=1: prog.advance(task, n)


def quiet_library_bars() -> None:
    """Turn off the tqdm bars transformers ("Loading weights") and huggingface_hub draw on stderr: in the
    CLI they would interleave with slmeval's own progress display and log lines. huggingface_hub's
    switch is read by transformers when it is first imported; a transformers already imported (a test
    process, a notebook) is switched off directly."""
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    hf_logging = sys.modules.get("transformers.utils.logging")
    if hf_logging is not None:
        hf_logging.disable_progress_bar()
