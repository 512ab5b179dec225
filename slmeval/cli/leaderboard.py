"""`slmeval leaderboard add | build | pin-hashes | reproduce`: publish submitted runs next to reported ones."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

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
    from slmeval.io import OutputError, check_output_path
    from slmeval.leaderboard.site import build_site

    try:
        check_output_path(out, "--out", folder=True)     # before the board is re-verified
        written = build_site(Board(board), out)
    except (SubmissionError, LiteratureError, OutputError) as exc:
        fail(exc)
    except OSError as exc:
        fail(f"--out {out}: cannot write ({exc.strerror or exc}): {exc.filename or out}")
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"board ledger head {Board(board).ledger().head} (publish it: a ledger rewritten later has another)")


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


@leaderboard_app.command("reproduce")
def reproduce_cmd(
    entry: str = typer.Argument(..., help="An accepted submission: its folder name under submissions/ or its name."),
    model: Optional[str] = typer.Option(None, "--model", help="A local folder with the submitted model's files "
                                        "(default: the Hub id at the commit the run recorded)."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="The unit tokenizer (as `slmeval run "
                                            "--tokenizer`); its identity must equal the recorded one."),
    include_path: Optional[list[Path]] = typer.Option(None, "--include-path", help="Extra folder of task files."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Folder holding the benchmark data."),
    device: str = typer.Option("cpu", "--device", help="Device to run the model on."),
    out: Optional[Path] = typer.Option(None, "--out", help="Keep the re-run's results and samples in this folder."),
    board: Path = BOARD_OPTION,
) -> None:
    """Re-run a submission's model with its recorded protocol and mark it reproduced when every per-item credit
    matches (exit 0); list the differences otherwise (exit 1)."""
    from slmeval.leaderboard import Board, SubmissionError
    from slmeval.leaderboard.reproduce import reproduce

    try:
        result = reproduce(Board(board), entry, model=model, tokenizer=tokenizer, include_path=include_path or [],
                           data_root=data_root, device=device, output=out)
    except (ValueError, OSError) as exc:     # SubmissionError, ModelError, TaskError...: one clear message
        fail(exc)
    if result.reproduced:
        typer.echo(f"reproduced {result.slug}: all {result.n_items} per-item credits match ({result.model}); "
                   f"recorded in the ledger as entry {result.record['seq']}")
        return
    typer.echo(f"NOT reproduced {result.slug} ({result.model}): {len(result.differences)} difference(s)")
    for line in result.differences:
        typer.echo(f"  {line}")
    raise typer.Exit(1)
