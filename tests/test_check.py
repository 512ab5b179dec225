"""slmeval check: exact McNemar p-values, the paired CI, the pass/fail decision and input refusal."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _leaderboard_helpers import correctness, write_run  # noqa: E402

from slmeval.check import ItemMismatchError, RunError, compare_runs, load_run, mcnemar_exact, paired_delta_ci
from slmeval.cli import app

TASKS = ["mini_sblimp", "mini_sstorycloze", "mini_tstorycloze", "mini_ms_sstorycloze"]
N_ITEMS = 400


def mcnemar_reference(b: int, c: int) -> float:
    """Independent float64 computation: doubled smaller binomial tail, from binomial coefficients."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


@pytest.mark.parametrize("b,c", [(0, 1), (1, 0), (0, 5), (3, 3), (4, 5), (2, 17), (30, 10), (61, 39),
                                 (0, 40), (120, 95), (250, 180), (1, 1000)])
def test_mcnemar_matches_binomial_coefficient_sum(b: int, c: int) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(mcnemar_reference(b, c), rel=1e-10, abs=1e-300)


def test_mcnemar_hand_values() -> None:
    assert mcnemar_exact(0, 0) == 1.0                       # nothing changed
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)    # 2 * (1/2)^5
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)   # 2 * (C(10,0)+C(10,1)) / 2^10
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(7, 2) == mcnemar_exact(2, 7)       # two-sided: symmetric


def test_paired_ci_equals_textbook_formula_for_binary_scores() -> None:
    rng = np.random.default_rng(3)
    base = (rng.random(500) < 0.6).astype(float)
    new = base.copy()
    flip = rng.choice(500, 60, replace=False)
    new[flip] = 1.0 - new[flip]
    b = int(np.sum((base == 1) & (new == 0)))
    c = int(np.sum((base == 0) & (new == 1)))
    n = 500
    delta = (c - b) / n
    se = math.sqrt((b + c) - (c - b) ** 2 / n) / n          # Wald SE of a paired difference of proportions
    ci = paired_delta_ci(new, base, confidence=0.95)
    assert ci.delta == pytest.approx(delta, abs=1e-15)
    assert ci.stderr == pytest.approx(se, rel=1e-12)
    assert ci.ci_low == pytest.approx(delta - 1.959963984540054 * se, rel=1e-9)
    assert ci.ci_high == pytest.approx(delta + 1.959963984540054 * se, rel=1e-9)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[float]]]:
    correct = {t: correctness(N_ITEMS, 0.62 + 0.05 * i, seed=i, tie_rate=0.01) for i, t in enumerate(TASKS)}
    return write_run(tmp_path_factory.mktemp("baseline") / "run", correct), correct


def _flip(values: list[float], count: int, *, to: float = 0.0, source: float = 1.0) -> list[float]:
    out = list(values)
    positions = [i for i, v in enumerate(out) if v == source][:count]
    assert len(positions) == count
    for i in positions:
        out[i] = to
    return out


def test_identical_run_passes(baseline, tmp_path: Path) -> None:
    base_dir, correct = baseline
    new_dir = write_run(tmp_path / "new", correct, model="ckpt/step-2000", seed=7)
    report = compare_runs(load_run(new_dir), load_run(base_dir / "results.json"))
    assert report.passed
    assert [t.task for t in report.tasks] == sorted(TASKS)
    for t in report.tasks:
        assert (t.n_lost, t.n_gained, t.p_value, t.delta_points) == (0, 0, 1.0, 0.0)
        assert t.n_items == N_ITEMS
    result = CliRunner().invoke(app, ["check", "--results", str(new_dir), "--baseline", str(base_dir)])
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output


def test_injected_regression_fails_only_that_task(baseline, tmp_path: Path) -> None:
    base_dir, correct = baseline
    degraded = dict(correct, mini_sstorycloze=_flip(correct["mini_sstorycloze"], 30))
    new_dir = write_run(tmp_path / "new", degraded)
    report = compare_runs(load_run(new_dir), load_run(base_dir))
    by_task = {t.task: t for t in report.tasks}
    hit = by_task["mini_sstorycloze"]
    assert (hit.n_lost, hit.n_gained) == (30, 0)
    assert hit.delta_points == pytest.approx(-100 * 30 / N_ITEMS)
    assert hit.p_value == pytest.approx(mcnemar_reference(30, 0))
    assert hit.ci_high_points < 0 and hit.regressed
    assert [t.task for t in report.tasks if t.regressed] == ["mini_sstorycloze"]

    runner = CliRunner()
    result = runner.invoke(app, ["check", "--results", str(new_dir), "--baseline", str(base_dir), "--format", "github"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1 and errors[0].startswith("::error title=slmeval check%3A mini_sstorycloze::")
    notices = [line for line in result.output.splitlines() if line.startswith("::notice ")]
    assert sum(" run::" not in line for line in notices) == 3         # one per task that did not regress
    assert [line.split("::")[1] for line in notices if " run::" in line] == [
        "notice title=slmeval check%3A new run", "notice title=slmeval check%3A baseline run"]
    assert all("consistent" in line and "not reproduced" in line for line in notices if " run::" in line)

    as_json = runner.invoke(app, ["check", "--results", str(new_dir), "--baseline", str(base_dir), "--format", "json",
                                  "--output", str(tmp_path / "report.json")])
    assert as_json.exit_code == 1
    parsed = json.loads(as_json.output)
    assert parsed["passed"] is False and parsed == json.loads((tmp_path / "report.json").read_text())
    # Tolerance: the same 7.5-point drop passes when up to 10 points are allowed.
    tolerant = runner.invoke(app, ["check", "--results", str(new_dir), "--baseline", str(base_dir),
                                   "--max-drop", "10"])
    assert tolerant.exit_code == 0, tolerant.output


def test_drop_beyond_tolerance_but_not_significant_passes(baseline, tmp_path: Path) -> None:
    base_dir, correct = baseline
    # 3 lost of 400 = 0.75 points (> 0.5) but exact p = 0.25: noise, not a regression.
    new_dir = write_run(tmp_path / "new", dict(correct, mini_sblimp=_flip(correct["mini_sblimp"], 3)))
    report = compare_runs(load_run(new_dir), load_run(base_dir), tasks=["mini_sblimp"])
    (task,) = report.tasks
    assert task.p_value == pytest.approx(0.25) and not task.regressed and report.passed
    assert "not significantly" in task.verdict


def test_ties_count_as_wrong_in_the_test_and_half_in_the_delta(baseline, tmp_path: Path) -> None:
    base_dir, correct = baseline
    tied = _flip(correct["mini_tstorycloze"], 20, to=0.5)             # right -> tie: a loss for the test
    tied = _flip(tied, 4, to=0.5, source=0.0)                          # wrong -> tie: not a gain
    new_dir = write_run(tmp_path / "new", dict(correct, mini_tstorycloze=tied))
    (task,) = compare_runs(load_run(new_dir), load_run(base_dir), tasks=["mini_tstorycloze"]).tasks
    assert (task.n_lost, task.n_gained) == (20, 0)
    assert task.p_value == pytest.approx(mcnemar_reference(20, 0))
    assert task.delta_points == pytest.approx(100 * (-20 * 0.5 + 4 * 0.5) / N_ITEMS)
    assert task.regressed   # -2 points, p ~ 2e-6
    assert task.n_ties_new == sum(v == 0.5 for v in tied) == task.n_ties_base + 24


def test_ties_scored_zero_under_cuervo_are_still_counted_as_ties(tmp_path: Path) -> None:
    from slmeval.check.runs import read_samples

    lines = [{"id": "a", "positive_key": "a+", "negative_key": "a-", "positive_score": -2.0, "negative_score": -2.0,
              "correct": 0.0},   # the cuervo preset gives a tie 0
             {"id": "b", "positive_key": "b+", "negative_key": "b-", "positive_score": -1.0, "negative_score": -2.0,
              "correct": 1.0},
             {"id": "c", "positive_key": "c+", "negative_key": "c-", "correct": 0.5}]   # no scores: 0.5 is a tie
    path = tmp_path / "samples_t.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert [(s.correct, s.tie) for s in read_samples(path)] == [(0.0, True), (1.0, False), (0.5, True)]


def test_mismatched_item_lists_are_refused(baseline, tmp_path: Path) -> None:
    base_dir, correct = baseline
    fewer = dict(correct, mini_sblimp=correct["mini_sblimp"][:-5])
    new_dir = write_run(tmp_path / "new", fewer)
    with pytest.raises(ItemMismatchError, match="5 item\\(s\\) only in BASELINE"):
        compare_runs(load_run(new_dir), load_run(base_dir))
    result = CliRunner().invoke(app, ["check", "--results", str(new_dir), "--baseline", str(base_dir)])
    assert result.exit_code == 2 and "item lists differ" in result.output


def test_same_count_but_renamed_item_is_refused(baseline, tmp_path: Path) -> None:
    base_dir, correct = baseline
    new_dir = write_run(tmp_path / "new", correct)
    path = new_dir / "samples_mini_sstorycloze.jsonl"
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["negative_key"] = "story0000/negative_v2"
    lines[0] = json.dumps(first)
    path.write_text("\n".join(lines) + "\n")
    results = json.loads((new_dir / "results.json").read_text())
    del results["provenance"]["task_hashes"]["mini_sstorycloze"]["items_sha256"]   # only the samples tell
    (new_dir / "results.json").write_text(json.dumps(results))
    with pytest.raises(ItemMismatchError, match="1 item\\(s\\) only in NEW"):
        compare_runs(load_run(new_dir), load_run(base_dir))


def test_samples_that_do_not_match_their_results_are_refused(baseline, tmp_path: Path) -> None:
    base_dir, correct = baseline
    new_dir = write_run(tmp_path / "new", correct)
    other = write_run(tmp_path / "other", dict(correct, mini_sblimp=correct["mini_sblimp"][:100]))
    (new_dir / "samples_mini_sblimp.jsonl").write_bytes((other / "samples_mini_sblimp.jsonl").read_bytes())
    with pytest.raises(RunError, match="items do not match provenance"):
        compare_runs(load_run(new_dir), load_run(base_dir))


def test_bad_inputs_name_the_file(baseline, tmp_path: Path) -> None:
    base_dir, correct = baseline
    new_dir = write_run(tmp_path / "new", correct)
    path = new_dir / "samples_mini_sblimp.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"correct": 1.0', '"correct": 0.7').replace('"correct": 0.0', '"correct": 0.7')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RunError, match=r"samples_mini_sblimp.jsonl:3: field 'correct'"):
        compare_runs(load_run(new_dir), load_run(base_dir))
    with pytest.raises(RunError, match="not found"):
        load_run(tmp_path / "missing")
    with pytest.raises(RunError, match="not in this NEW run"):
        compare_runs(load_run(base_dir), load_run(base_dir), tasks=["sblimp"])
    partial = write_run(tmp_path / "partial", {"mini_sblimp": correct["mini_sblimp"]})
    with pytest.raises(RunError, match="lacks baseline task"):
        compare_runs(load_run(partial), load_run(base_dir))
