"""Render a CheckReport as a rich table, JSON, or GitHub Actions workflow commands."""
from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from slmeval.check.compare import CheckReport, TaskComparison
from slmeval.io import atomic_write_text


def _fmt_p(p: float) -> str:
    return f"{p:.2e}" if p < 1e-3 else f"{p:.3f}"


def _delta(t: TaskComparison) -> str:
    return f"{t.delta_points:+.2f} [{t.ci_low_points:+.2f}, {t.ci_high_points:+.2f}]"


def render_table(report: CheckReport, console: Console | None = None) -> None:
    console = console or Console()
    conf = round(100 * (1 - report.alpha))
    table = Table(title=f"slmeval check (alpha={report.alpha:g}, max drop={report.max_drop_points:g} points)")
    for name, justify in [("task", "left"), ("n", "right"), ("baseline acc", "right"), ("new acc", "right"),
                          (f"delta points [{conf}% CI]", "right"), ("lost/gained", "right"),
                          ("p (McNemar)", "right"), ("verdict", "left")]:
        table.add_column(name, justify=justify)
    for t in report.tasks:
        style = "bold red" if t.regressed else None
        table.add_row(t.task, str(t.n_items), f"{100 * t.base_acc:.2f}", f"{100 * t.new_acc:.2f}", _delta(t),
                      f"{t.n_lost}/{t.n_gained}", _fmt_p(t.p_value), t.verdict, style=style)
    console.print(table)
    for t in report.tasks:
        for warning in t.warnings:
            console.print(f"[yellow]warning[/] {t.task}: {warning}")
    for note in report.notes:
        console.print(f"note: {note}")
    for label, phrase in report.standing.items():
        console.print(f"{label.upper()} run: {phrase}", markup=False, soft_wrap=True)
    console.print(f"Ties: {report.tie_rule}. CI: {report.ci_method}.")
    console.print("[bold red]FAILED[/]: at least one task regressed" if not report.passed
                  else "[bold green]PASSED[/]: no task dropped significantly by more than the tolerance")


def render_json(report: CheckReport) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True)


def _escape_data(text: str) -> str:
    # GitHub workflow-command escaping for the message part.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: CheckReport) -> str:
    """One workflow command per task: ::error for a regression, ::warning for other drops, ::notice else."""
    lines = []
    for t in report.tasks:
        if t.regressed:
            level = "error"
        elif t.delta_points < -report.max_drop_points or (t.significant and t.n_lost > t.n_gained):
            level = "warning"
        else:
            level = "notice"
        message = (f"{t.task}: {t.verdict}. accuracy {100 * t.base_acc:.2f} -> {100 * t.new_acc:.2f} "
                   f"(delta {_delta(t)} points, {round(100 * (1 - report.alpha))}% CI), "
                   f"lost {t.n_lost} / gained {t.n_gained} of {t.n_items} items, exact McNemar p={_fmt_p(t.p_value)}")
        if t.warnings:
            message += ". " + "; ".join(t.warnings)
        lines.append(f"::{level} title={_escape_property('slmeval check: ' + t.task)}::{_escape_data(message)}")
    for note in report.notes:
        lines.append(f"::notice title=slmeval check::{_escape_data(note)}")
    for label, phrase in report.standing.items():
        lines.append(f"::notice title={_escape_property(f'slmeval check: {label} run')}::{_escape_data(phrase)}")
    return "\n".join(lines)


def step_summary_markdown(report: CheckReport) -> str:
    """A Markdown table for $GITHUB_STEP_SUMMARY."""
    status = "passed" if report.passed else "**failed**"
    rows = [f"### slmeval check {status}",
            f"alpha={report.alpha:g}, max drop={report.max_drop_points:g} points; {report.tie_rule}; "
            f"CI: {report.ci_method}.", "",
            "| task | n | baseline | new | delta points [CI] | lost/gained | p | verdict |",
            "|---|---:|---:|---:|---:|---:|---:|---|"]
    rows[2:2] = [f"{label.upper()} run: {phrase}." for label, phrase in report.standing.items()] + \
        ([""] if report.standing else [])
    for t in report.tasks:
        verdict = t.verdict.replace("|", "\\|")
        rows.append(f"| {t.task} | {t.n_items} | {100 * t.base_acc:.2f} | {100 * t.new_acc:.2f} | {_delta(t)} "
                    f"| {t.n_lost}/{t.n_gained} | {_fmt_p(t.p_value)} | {verdict} |")
    return "\n".join(rows) + "\n"


write_text_atomic = atomic_write_text   # one atomic writer for the whole project (slmeval.results.files)
