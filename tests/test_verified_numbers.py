"""A verified number is one we re-derived: leaderboard add / build and slmeval check recompute every
metric and every sample's credit from a run's samples, check stored files' sha256, and refuse on any
difference. The run under test is a real `slmeval run` on a tiny model."""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from slmeval.cli import app
from slmeval.leaderboard import Board, SubmissionError, add_submission
from slmeval.leaderboard.site import build_site
from slmeval.task_loader.registry import Grouping
from slmeval.results.verify import VerificationError, metrics_from_samples, verify_run

REPO = Path(__file__).resolve().parents[1]
TASK = "v_pairs"
N_PAIRS = 30


@pytest.fixture(scope="module")
def real_run(tiny_llama_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("verified")
    rng = np.random.default_rng(5)
    pairs = [{"id": f"p{i:02d}", "positive": rng.integers(0, 16, int(rng.integers(4, 9))).tolist(),
              "negative": rng.integers(0, 16, int(rng.integers(4, 9))).tolist()} for i in range(N_PAIRS)]
    pairs[3]["negative"] = pairs[3]["positive"]                     # one genuine tie (identical sides)
    (root / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    (root / "tasks").mkdir()
    (root / "tasks" / "v.yaml").write_text(f"name: {TASK}\nfamily: pairs\nsource: units_jsonl\n"
                                           f"path: {root / 'pairs.jsonl'}\n")
    out = root / "run"
    res = CliRunner().invoke(app, ["run", "--model", str(tiny_llama_dir), "--tasks", TASK, "--include-path",
                                   str(root / "tasks"), "--output", str(out), "--no-cache", "--no-progress"])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture()
def board(tmp_path: Path) -> Board:
    root = tmp_path / "board"
    shutil.copytree(REPO / "leaderboard", root, ignore=shutil.ignore_patterns("submissions"))
    return Board(root)


def _copy(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


def _samples(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / f"samples_{TASK}.jsonl").read_text().splitlines()]


def _write_samples(run: Path, samples: list[dict]) -> None:
    (run / f"samples_{TASK}.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))


def _edit_results(run: Path, edit) -> None:
    results = json.loads((run / "results.json").read_text())
    edit(results)
    (run / "results.json").write_text(json.dumps(results, indent=2))


def _reference_acc(samples: list[dict]) -> float:
    """Independent: credit from the two scores by hand (ties half), float64 mean."""
    credit = [1.0 if s["positive_score"] > s["negative_score"] else 0.0 if s["positive_score"] < s["negative_score"]
              else 0.5 for s in samples]
    return float(np.mean(np.array(credit, dtype=np.float64)))


def test_a_real_run_re_derives_exactly(real_run):
    results = json.loads((real_run / "results.json").read_text())
    samples = _samples(real_run)
    verify_run(results, {TASK: samples}, source="run")
    assert results["results"][TASK]["acc"] == pytest.approx(_reference_acc(samples), abs=1e-15)
    assert [s["correct"] for s in samples if s["id"] == "p03"] == [0.5]
    for s in samples:                                  # mean log-prob per scored token
        assert s["positive_score"] == pytest.approx(s["positive_logprob"] / s["positive_n"], rel=1e-15)
    metrics, _ = metrics_from_samples("pairs", Grouping(), samples)
    correct = np.array([s["correct"] for s in samples])
    assert metrics["acc_stderr"] == pytest.approx(np.std(correct, ddof=1) / math.sqrt(len(correct)), rel=1e-12)


def test_add_refuses_an_edited_accuracy(real_run, board, tmp_path):
    run = _copy(real_run, tmp_path / "edited")
    _edit_results(run, lambda r: r["results"][TASK].update(acc=0.99))
    truth = _reference_acc(_samples(run))
    with pytest.raises(SubmissionError, match=rf"results\.{TASK}\.acc = 0\.99 but the samples give {truth!r}"):
        add_submission(board, run, "edited")
    res = CliRunner().invoke(app, ["leaderboard", "add", str(run), "--name", "edited", "--board", str(board.root)])
    assert res.exit_code == 2 and "0.99" in res.output and "Traceback" not in res.output
    assert not board.submissions_dir.exists() or not any(board.submissions_dir.iterdir())


@pytest.mark.parametrize("edit,message", [
    # the credit of one pair flipped, and the accuracy "fixed" to match: the scores still say otherwise
    ("correct", r"correct = 0\.0 but its scores give 1\.0 under the recorded protocol"),
    # a score nudged: it no longer is the mean of the log-probs the run recorded
    ("score", r"positive_score .* is not the mean of positive_logprob over positive_n"),
    # a line removed: n_samples and the item hash no longer match
    ("drop", rf"n_samples\.{TASK} = {N_PAIRS} but .* holds {N_PAIRS - 1} samples"),
    # an item relabelled (the metrics group by meta): the recorded metadata hash no longer matches
    ("meta", rf"task_hashes\.{TASK}\.meta_sha256 does not match the item metadata \(meta\)"),
])
def test_add_refuses_an_edited_sample(real_run, board, tmp_path, edit, message):
    run = _copy(real_run, tmp_path / "edited")
    samples = _samples(run)
    i = next(i for i, s in enumerate(samples) if s["correct"] == 1.0)
    if edit == "correct":
        samples[i]["correct"] = 0.0
        acc = float(np.mean([s["correct"] for s in samples]))
        _edit_results(run, lambda r: r["results"][TASK].update(acc=acc))
    elif edit == "meta":
        samples[i]["meta"]["type"] = "relabelled"
    elif edit == "score":
        samples[i]["positive_score"] += 0.25
    else:
        del samples[i]
    _write_samples(run, samples)
    with pytest.raises(SubmissionError, match=message):
        add_submission(board, run, "edited")


def test_add_refuses_a_run_without_its_samples_or_with_a_path_as_task_name(real_run, board, tmp_path):
    run = _copy(real_run, tmp_path / "nosamples")
    (run / f"samples_{TASK}.jsonl").unlink()
    with pytest.raises(SubmissionError, match="not found .*a verified number needs its samples"):
        add_submission(board, run, "no samples")
    evil = _copy(real_run, tmp_path / "evil")

    def rename(r):
        for section in ("results", "configs", "versions", "n_samples"):
            r[section]["../../victim"] = r[section].pop(TASK)
        r["provenance"]["task_hashes"]["../../victim"] = r["provenance"]["task_hashes"].pop(TASK)
    _edit_results(evil, rename)
    with pytest.raises(SubmissionError, match=r"results: '\.\./\.\./victim' does not match"):
        add_submission(board, evil, "evil")


def test_build_refuses_a_stored_submission_edited_afterwards(real_run, board, tmp_path):
    old = os.umask(0o022)
    try:
        stored = add_submission(board, real_run, "tiny llama").directory
    finally:
        os.umask(old)
    assert sorted(p.name for p in stored.iterdir()) == ["results.json", f"samples_{TASK}.jsonl", "submission.json"]
    assert stored.stat().st_mode & 0o777 == 0o755                       # a shared board, not a private folder
    build_site(board, tmp_path / "site")                                  # accepted as stored
    pristine = {p.name: p.read_bytes() for p in stored.iterdir()}

    def restore():
        for name, data in pristine.items():
            (stored / name).write_bytes(data)

    _edit_results(stored, lambda r: r["results"][TASK].update(acc=0.99))
    with pytest.raises(SubmissionError, match=r"differs from what was accepted on .*: results\.json \(edited\)"):
        build_site(board, tmp_path / "site")
    restore()
    samples = _samples(stored)
    samples[0]["meta"] = {"note": "edited"}
    _write_samples(stored, samples)
    with pytest.raises(SubmissionError, match=rf"samples_{TASK}\.jsonl \(edited\)"):
        build_site(board, tmp_path / "site")
    res = CliRunner().invoke(app, ["leaderboard", "build", "--out", str(tmp_path / "site"), "--board", str(board.root)])
    assert res.exit_code == 2 and "Accepted files are frozen" in res.output
    # Behind the ledger, the folder's own checks still hold: with the ledger removed from the way (its
    # record of this folder rewritten too), a recorded sha256 that no longer matches, and numbers that do
    # not follow, are each still refused.
    restore()
    _edit_results(stored, lambda r: r["results"][TASK].update(acc=0.99))
    _rewrite_ledger(board, stored)
    with pytest.raises(SubmissionError, match=r"results\.json: sha256 differs from the one recorded"):
        build_site(board, tmp_path / "site")
    meta = json.loads((stored / "submission.json").read_text())
    meta["files"]["results.json"] = hashlib.sha256((stored / "results.json").read_bytes()).hexdigest()
    (stored / "submission.json").write_text(json.dumps(meta))
    _rewrite_ledger(board, stored)
    with pytest.raises(SubmissionError, match=r"(?s)refused: .*acc = 0\.99 but the samples give"):
        build_site(board, tmp_path / "site")


def _rewrite_ledger(board: Board, folder: Path) -> None:
    """What only someone who rewrites the board's ledger too can do: record the folder as it is now."""
    from slmeval.leaderboard.ledger import ACCEPTED, Ledger, folder_hashes

    (board.root / "ledger.jsonl").unlink()
    meta = json.loads((folder / "submission.json").read_text())
    Ledger.read(board.root).append(ACCEPTED, folder.name, name=meta["name"], results_sha256=meta["results_sha256"],
                                   files=folder_hashes(folder))


def test_check_fails_on_a_run_whose_numbers_do_not_follow(real_run, tmp_path):
    run = _copy(real_run, tmp_path / "edited")
    _edit_results(run, lambda r: r["results"][TASK].update(acc=0.99))
    res = CliRunner().invoke(app, ["check", "--results", str(run), "--baseline", str(real_run)])
    assert res.exit_code == 2, res.output                                 # refused, not PASSED
    assert "NEW run" in res.output and "acc = 0.99 but the samples give" in res.output
    assert "PASSED" not in res.output
    res = CliRunner().invoke(app, ["check", "--results", str(real_run), "--baseline", str(run)])
    assert res.exit_code == 2 and "BASELINE run" in res.output
    same = CliRunner().invoke(app, ["check", "--results", str(real_run), "--baseline", str(real_run)])
    assert same.exit_code == 0 and "PASSED" in same.output


def test_verify_names_a_protocol_that_cannot_be_rebuilt(real_run):
    results = json.loads((real_run / "results.json").read_text())
    del results["config"]["protocol"]["tie_value"]
    with pytest.raises(VerificationError, match=r"run: config\.protocol lacks field\(s\) \['tie_value'\]"):
        verify_run(results, {TASK: _samples(real_run)}, source="run")


def _forge_all_correct(samples: list[dict], how: str) -> None:
    """The audit's forgery: every wrong pair's positive score nudged above its negative and its credit set
    to 1, with the fields that would expose the nudge deleted or made unusable."""
    for s in samples:
        if s["correct"] == 1.0:
            continue
        s["positive_score"] = s["negative_score"] + 0.1
        s["correct"] = 1.0
        if how == "deleted":
            del s["positive_logprob"], s["negative_logprob"]
        elif how == "deleted_n":
            del s["positive_n"]
        else:
            s["positive_n"] = how          # 123.0, 0, True or "7": no count a run could have written


@pytest.mark.parametrize("how,message", [
    ("deleted", r"positive_logprob is missing: the score cannot be re-derived"),
    ("deleted_n", r"positive_n is missing: a mean score cannot be re-derived"),
    (123.0, r"positive_n must be an integer >= 1 \(the number of scored tokens\), got 123\.0"),
    (0, r"positive_n must be an integer >= 1 .*got 0"),
    (True, r"positive_n must be an integer >= 1 .*got True"),
    ("7", r"positive_n must be an integer >= 1 .*got '7'"),
])
def test_a_forged_perfect_score_without_the_fields_that_expose_it_is_refused(real_run, board, tmp_path, how,
                                                                            message):
    run = _copy(real_run, tmp_path / "forged")
    samples = _samples(run)
    assert _reference_acc(samples) < 0.9                                 # the real run is far from perfect
    _forge_all_correct(samples, how)
    _write_samples(run, samples)
    _edit_results(run, lambda r: r["results"][TASK].update(acc=1.0, acc_stderr=0.0))
    with pytest.raises(VerificationError, match=message):
        verify_run(json.loads((run / "results.json").read_text()), {TASK: samples}, source="run")
    with pytest.raises(SubmissionError, match=message):
        add_submission(board, run, "forged")
    res = CliRunner().invoke(app, ["check", "--results", str(run), "--baseline", str(real_run)])
    assert res.exit_code == 2 and "significant gain" not in res.output and "Traceback" not in res.output


def test_a_model_hash_edited_in_one_place_only_is_refused(real_run):
    results = json.loads((real_run / "results.json").read_text())
    assert results["config"]["model_sha256"] == results["provenance"]["model_sha256"]
    results["provenance"]["model_sha256"] = "ab" * 32
    with pytest.raises(VerificationError, match=r"config\.model_sha256 '[0-9a-f]{64}' differs from "
                                                r"provenance\.model_sha256 'abab"):
        verify_run(results, {TASK: _samples(real_run)}, source="run")
    del results["config"]["model_sha256"]
    with pytest.raises(VerificationError, match=r"config\.model_sha256 is missing"):
        verify_run(results, {TASK: _samples(real_run)}, source="run")
