"""The typer application every `slmeval` sub-command registers on (one module per command group)."""
from __future__ import annotations

import logging
from typing import NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

app = typer.Typer(
    name="slmeval",
    help="Evaluate speech language models on likelihood-pair benchmarks and fit scaling laws.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _setup(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    from slmeval.distributed import env_rank

    quiet = env_rank() != 0          # torchrun: ranks other than 0 only warn
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
    )


def print_error(err: Exception | str, prefix: str = "error: ") -> None:
    """One error line on stderr. Text, not markup: a message such as "[Hu12]" or "task:b:positive" must be
    printed as written, not read as a style or an emoji; soft wrap keeps long paths whole."""
    Console(stderr=True, soft_wrap=True).print(Text.assemble((prefix, "red"), str(err)))


def fail(err: Exception | str, code: int = 2) -> NoReturn:
    """Bad input or a refused request: the error, then exit 2 (every command; 1 means "ran, found a problem")."""
    print_error(err)
    raise typer.Exit(code)
