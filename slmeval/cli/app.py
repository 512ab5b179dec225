"""The typer application every `slmeval` sub-command registers on (one module per command group)."""
from __future__ import annotations

import logging

import typer
from rich.logging import RichHandler

app = typer.Typer(
    name="slmeval",
    help="Evaluate speech language models on likelihood-pair benchmarks and fit scaling laws.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _setup(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
    )
