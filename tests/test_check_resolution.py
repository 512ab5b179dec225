"""`slmeval check` says when a task is too small for the requested --max-drop: with n items one item is
100 / n points, so a finer tolerance cannot be resolved (60 pairs: one item = 1.67 points)."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from _leaderboard_helpers import correctness, write_run
from slmeval.check import compare_runs, load_run
from slmeval.check.compare import resolution_warning
from slmeval.cli import app


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    small = correctness(60, 0.7, seed=1)
    large = correctness(400, 0.7, seed=2)
    root = tmp_path_factory.mktemp("resolution")
    base = write_run(root / "base", {"mini_sstorycloze": small, "mini_sblimp": large})
    new = write_run(root / "new", {"mini_sstorycloze": small, "mini_sblimp": large}, seed=5)
    return new, base


def test_warning_on_the_small_task_only(runs) -> None:
    new, base = runs
    report = compare_runs(load_run(new), load_run(base), max_drop=0.5)
    by_task = {t.task: t for t in report.tasks}
    (warning,) = by_task["mini_sstorycloze"].warnings
    # 100 / 60 = 1.67 points per item; exact McNemar with none gained: p = 2 * 0.5**k, first < 0.05 at k = 6
    assert 2 * 0.5**5 >= 0.05 > 2 * 0.5**6
    assert "with 60 items one item is 1.67 points" in warning
    assert "at least 6 lost items (10.00 points)" in warning
    assert by_task["mini_sblimp"].warnings == []          # 400 items: 0.25 points per item < 0.5
    assert report.passed                                   # a warning, not a verdict


@pytest.mark.parametrize("max_drop,warns", [(0.0, False), (0.5, True), (1.66, True), (100 / 60, False), (2.0, False)])
def test_edges_of_the_rule(max_drop: float, warns: bool) -> None:
    # 0 means "no tolerance" on purpose; exactly one item's worth is resolvable (a one-item drop passes)
    assert (resolution_warning(60, max_drop, 0.05) is not None) is warns


def test_no_significant_drop_possible_on_a_tiny_task() -> None:
    # 4 items: the smallest two-sided exact p is 2 * 0.5**4 = 0.125 > 0.05
    assert "no drop on this task can be significant" in resolution_warning(4, 1.0, 0.05)


def test_cli_prints_it_in_table_and_github_formats(runs) -> None:
    new, base = runs
    args = ["check", "--results", str(new), "--baseline", str(base), "--max-drop", "0.5"]
    table = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert table.exit_code == 0, table.output
    assert "warning mini_sstorycloze: --max-drop 0.5 is finer than this task resolves" in table.output
    github = CliRunner().invoke(app, args + ["--format", "github"])
    line = next(x for x in github.output.splitlines() if "mini_sstorycloze" in x)
    assert "one item is 1.67 points" in line
