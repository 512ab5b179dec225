"""`slmeval check`: fail a CI job only when a task dropped by more than --max-drop points *and* significantly."""
from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

import typer

from slmeval.cli.app import app, fail, make_console

EXIT_REGRESSION = 1
EXIT_REFUSED = 2


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    github = "github"


@app.command("check")
def check(
    results: Path = typer.Option(..., "--results", help="NEW run: output directory or its results.json."),
    baseline: Path = typer.Option(..., "--baseline", help="BASELINE run: output directory or its results.json."),
    tasks: str = typer.Option("", "--tasks", help="Comma-separated tasks (default: every baseline task)."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the exact McNemar test, per task."),
    max_drop: float = typer.Option(0.5, "--max-drop", help="Tolerated accuracy drop in points (0-100 scale)."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table, json or github (annotations)."),
    output: Path = typer.Option(None, "--output", help="Also write the JSON report to this file."),
    board: Path = typer.Option(None, "--board", help="A leaderboard folder: say whether each run is an entry the "
                               "board reproduced, or only consistent."),
) -> None:
    """Pair two runs item by item and test each task for a significant accuracy drop."""
    from slmeval.check import RunError, compare_runs, load_run
    from slmeval.check.report import (render_github, render_json, render_table, step_summary_markdown,
                                      write_text_atomic)
    from slmeval.io import OutputError, check_output_path

    task_list = [t.strip() for t in tasks.split(",") if t.strip()] or None
    summary = os.environ.get("GITHUB_STEP_SUMMARY") if fmt is OutputFormat.github else None
    try:        # every path checked before the comparison: a refused write must not follow a verdict
        if output is not None:
            check_output_path(output, "--output", folder=False)
        if summary:
            check_output_path(summary, "GITHUB_STEP_SUMMARY", folder=False)
    except OutputError as exc:
        fail(exc, EXIT_REFUSED)
    try:
        new_run, base_run = load_run(results), load_run(baseline)
        report = compare_runs(new_run, base_run, tasks=task_list, alpha=alpha, max_drop=max_drop)
        from slmeval.leaderboard.standing import standing
        report.standing = {"new": standing(new_run.results_path, board),
                           "baseline": standing(base_run.results_path, board)}
    except (RunError, ValueError) as exc:
        if fmt is OutputFormat.github:
            typer.echo(f"::error title=slmeval check refused::{str(exc).replace('%', '%25').replace(chr(10), '%0A')}")
        fail(exc, EXIT_REFUSED)
    if output is not None:
        try:
            write_text_atomic(output, render_json(report) + "\n")
        except OSError as exc:
            fail(f"--output {output}: cannot write ({exc.strerror or exc})", EXIT_REFUSED)
    if fmt is OutputFormat.json:
        typer.echo(render_json(report))
    elif fmt is OutputFormat.github:
        typer.echo(render_github(report))
        if summary:
            try:
                with open(summary, "a", encoding="utf-8") as handle:
                    handle.write(step_summary_markdown(report))
            except OSError as exc:
                fail(f"GITHUB_STEP_SUMMARY {summary}: cannot append ({exc.strerror or exc})", EXIT_REFUSED)
    else:
        render_table(report, make_console())
    if not report.passed:
        raise typer.Exit(EXIT_REGRESSION)
