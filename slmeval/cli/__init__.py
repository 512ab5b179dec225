"""`slmeval` command line. Each command group lives in its own module and registers on `app`."""
from __future__ import annotations

from slmeval.cli.app import app
from slmeval.cli import run, plugins, demo, units, fit, synth, leaderboard, check, text, sweep, data  # noqa: F401  (registration)

__all__ = ["app", "main"]


def main() -> None:
    app()
