"""The typer application every `slmeval` sub-command registers on (one module per command group)."""
from __future__ import annotations

import logging
from typing import NoReturn, Optional

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


# Rich draws 80 columns when it cannot ask a terminal (CI logs, pipes, files) and cuts table cells to
# "modali…"; there, tables get at least this many columns (COLUMNS, when larger, still wins).
PIPED_WIDTH = 160


def make_console(*, stderr: bool = False, **kwargs) -> Console:
    """The rich Console every command prints through: the terminal's width on a terminal, at least
    PIPED_WIDTH columns elsewhere, so a CI log shows whole task names, paths and values."""
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal else max(probe.width, PIPED_WIDTH)
    return Console(stderr=stderr, width=width, **kwargs)


def _print_version(value: bool) -> None:
    if value:
        from slmeval import __version__

        typer.echo(f"slmeval {__version__}")
        raise typer.Exit()


@app.callback()
def _setup(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
           version: Optional[bool] = typer.Option(None, "--version", is_eager=True, callback=_print_version,
                                                  help="Print slmeval's version and exit.")) -> None:
    from slmeval.distributed import env_rank
    from slmeval.progress import quiet_library_bars

    quiet = env_rank() != 0          # torchrun: ranks other than 0 only warn
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False, console=make_console(stderr=True))],
    )
    quiet_library_bars()     # transformers' / huggingface_hub's tqdm bars would interleave with ours


def print_error(err: Exception | str, prefix: str = "error: ") -> None:
    """One error line on stderr. Text, not markup: a message such as "[Hu12]" or "task:b:positive" must be
    printed as written, not read as a style or an emoji; soft wrap keeps long paths whole."""
    Console(stderr=True, soft_wrap=True).print(Text.assemble((prefix, "red"), str(err)))


def fail(err: Exception | str, code: int = 2) -> NoReturn:
    """Bad input or a refused request: the error, then exit 2 (every command; 1 means "ran, found a problem")."""
    print_error(err)
    raise typer.Exit(code)
