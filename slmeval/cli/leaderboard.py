"""`slmeval leaderboard add | build | pin-hashes`: publish verified results next to reported ones."""
from __future__ import annotations

from pathlib import Path

import typer

from slmeval.cli.app import app, fail

leaderboard_app = typer.Typer(help="Accept submissions and render the static leaderboard site.",
                              no_args_is_help=True)
app.add_typer(leaderboard_app, name="leaderboard")

BOARD_OPTION = typer.Option(Path("leaderboard"), "--board", help="Leaderboard folder (schema, hashes, submissions).")




@leaderboard_app.command("add")
def add(
    results: Path = typer.Argument(..., help="A run's results.json (or its output directory)."),
    name: str = typer.Option(..., "--name", help="Model name shown on the leaderboard (shown as plain text)."),
    params: str = typer.Option(None, "--params", help="Parameter count N, e.g. 358M or 3.58e8."),
    tokens: str = typer.Option(None, "--tokens", help="Training tokens D, e.g. 16.7B; 'a+b' sums training stages."),
    compute: str = typer.Option(None, "--compute", help="Training FLOPs; default 6*N*D when N and D are given."),
    board: Path = BOARD_OPTION,
) -> None:
    """Validate RESULTS against the schema and store it as a submission (refuses duplicates)."""
    from slmeval.leaderboard import Board, SubmissionError, add_submission

    try:
        submission = add_submission(Board(board), results, name, params=params, tokens=tokens, compute=compute)
    except SubmissionError as exc:
        fail(exc)
    typer.echo(f"accepted {submission.meta['name']!r} -> {submission.directory}")
    for task, status in sorted(submission.meta["data_status_at_submission"].items()):
        note = f" ({status['reason']})" if status["reason"] else ""
        typer.echo(f"  {task}: {status['status']}{note}")


@leaderboard_app.command("build")
def build(
    out: Path = typer.Option(..., "--out", help="Output folder for index.html, leaderboard.json, leaderboard.csv."),
    board: Path = BOARD_OPTION,
) -> None:
    """Render the static site (tables, inline SVG scatter) and the JSON/CSV exports."""
    from slmeval.leaderboard import Board, SubmissionError
    from slmeval.leaderboard.literature import LiteratureError
    from slmeval.leaderboard.site import build_site

    try:
        written = build_site(Board(board), out)
    except (SubmissionError, LiteratureError) as exc:
        fail(exc)
    for path in written:
        typer.echo(f"wrote {path}")


@leaderboard_app.command("pin-hashes")
def pin(
    results: Path = typer.Argument(..., help="A trusted run on the official task data."),
    tasks: str = typer.Option("", "--tasks", help="Comma-separated tasks to pin (default: every task in the run)."),
    force: bool = typer.Option(False, "--force", help="Replace hashes that are already pinned to other values."),
    board: Path = BOARD_OPTION,
) -> None:
    """Record a run's task hashes (items, data, version) as the official ones in official_tasks.json."""
    from slmeval.leaderboard import Board, SubmissionError, pin_hashes

    task_list = [t.strip() for t in tasks.split(",") if t.strip()] or None
    try:
        changes = pin_hashes(Board(board), results, task_list, force=force)
    except SubmissionError as exc:
        fail(exc)
    for task, pin_values in sorted(changes.items()):
        typer.echo(f"pinned {task}: items {pin_values['items_sha256'][:12]}..., data "
                   f"{pin_values['data_sha256'][:12]}..., version {pin_values['version']}")
