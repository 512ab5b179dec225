"""`slmeval data pull TASK...` and `slmeval data list`: the pinned public copies of task data (docs/data.md)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from slmeval.cli.app import app, fail

data_app = typer.Typer(help="Benchmark data from its pinned Hub copy or official archive: pull, list.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console()


@data_app.command("pull")
def pull_cmd(
    tasks: list[str] = typer.Argument(..., help="Task names (`slmeval data list` shows which have a public copy)."),
    include_path: Optional[list[Path]] = typer.Option(None, "--include-path", help="Extra folder of task files."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Download each task's pinned copy into the cache (resumable) and check every file's checksum."""
    from slmeval.task_loader.registry import TaskError, get_tasks
    from slmeval.task_loader.data import fetch

    try:
        configs = get_tasks(tasks, list(include_path or []))
        for cfg in configs:
            if cfg.remote is None:
                raise TaskError(f"task {cfg.name!r} names no Hub copy or archive ({cfg.origin}); how to get its "
                                f"data: {cfg.how_to_get or 'see the task file'}")
        for cfg in configs:
            got = fetch(cfg, progress=progress)
            state = "[green]verified[/]" if got.verified else "[yellow]not verified[/]: " + "; ".join(got.reasons)
            console.print(f"{cfg.name}: {len(got.files)} file(s), {got.size} bytes at {got.path} — {state}")
    except (ValueError, OSError) as err:
        fail(err)


@data_app.command("list")
def list_cmd(
    include_path: Optional[list[Path]] = typer.Option(None, "--include-path", help="Extra folder of task files."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Also look for the local layout here."),
) -> None:
    """Every task with a public copy or a local layout: where it comes from and whether it is here and verified."""
    from slmeval.data.remote import cached
    from slmeval.task_loader.registry import TaskError, load_registry

    try:
        registry = load_registry(list(include_path or []))
    except (ValueError, OSError) as err:
        fail(err)
    table = Table(title="task data", title_justify="left")
    for col in ("task", "public copy", "in cache", "verified", "local layout"):
        table.add_column(col)
    for name, cfg in sorted(registry.tasks.items()):
        if cfg.mini:
            continue
        try:
            path, _ = cfg.locate(data_root)
            local = str(path) if path.exists() else "–"
        except TaskError:
            local = "–"
        pin = cfg.remote
        if pin is None:
            table.add_row(name, "none (see how_to_get)", "–", "–", local)
            continue
        got = cached(pin)
        if got is not None:
            verified = "yes" if got.verified else "no: " + "; ".join(got.reasons)
        else:   # not here yet: say now whether it could ever be verified
            verified = "unpinned: " + "; ".join(pin.unpinned()) if pin.unpinned() else "–"
        table.add_row(name, pin.describe(), "–" if got is None else f"{len(got.files)} file(s), {got.size} B",
                      verified, local)
    Console().print(table)   # made here: the width is read when the command runs
