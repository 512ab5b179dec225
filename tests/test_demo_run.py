"""The main job end to end: the bundled demo model on the bundled mini tasks, through `slmeval.evaluate`
(the code path of `make demo` and of the real benchmarks). Model and data are fixed, so the accuracies
are deterministic; they are asserted against the targets the demo promises."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "audio_assets"
MINI_TASKS = ["mini_sblimp", "mini_sstorycloze", "mini_tstorycloze", "mini_ms_sstorycloze"]
# What the bundled model reaches must stay clearly above chance (0.5) where a small LM can learn it.
TARGETS = {"mini_sblimp": 0.65, "mini_tstorycloze": 0.65}


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory):
    from slmeval.evaluator import evaluate

    out = tmp_path_factory.mktemp("demo")
    results = evaluate(ASSETS / "demo_model", MINI_TASKS, tokenizer=str(ASSETS / "demo_tokenizer"),
                       output=out, use_cache=False, progress=False)
    return results, out


@pytest.mark.slow
def test_demo_scores_above_chance(demo_results):
    results, _ = demo_results
    for task, target in TARGETS.items():
        acc = results["results"][task]["acc"]
        assert acc >= target, f"{task}: acc {acc:.3f} < {target}"
        # and not by luck: more than three standard errors above chance
        assert acc - 0.5 > 3 * results["results"][task]["acc_stderr"]


@pytest.mark.slow
def test_demo_results_are_labelled_mini_with_hashes(demo_results):
    results, out = demo_results
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    expected_pairs = {"mini_sblimp": 144, "mini_sstorycloze": 60, "mini_tstorycloze": 60, "mini_ms_sstorycloze": 48}
    for task in MINI_TASKS:
        assert results["configs"][task]["mini"] is True
        hashes = results["provenance"]["task_hashes"][task]
        assert len(hashes["data_sha256"]) == 64 and len(hashes["items_sha256"]) == 64
        assert results["results"][task]["n_pairs"] == expected_pairs[task]
        assert (out / f"samples_{task}.jsonl").is_file()
    assert results["config"]["unit_mapping"]["offset"] == 3


def test_demo_model_fits_the_size_budget():
    weights = ASSETS / "demo_model" / "model.safetensors"
    assert weights.stat().st_size <= 10 * 2**20
    total = sum(p.stat().st_size for p in ASSETS.rglob("*") if p.is_file())
    assert total <= 40 * 10**6, f"audio_assets/ holds {total / 1e6:.1f} MB"


def _documented_rows() -> dict[str, tuple[str, str, str, int]]:
    """docs/demo.md "What it reaches": task -> (acc, stderr, details, pairs), as written."""
    text = (ROOT / "docs" / "demo.md").read_text().split("### What it reaches", 1)[1]
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| (mini_\w+) \| ([\d.]+) ± ([\d.]+)(?: \((.*)\))? \| (\d+) \| 50 \|$", line)
        if m:
            rows[m[1]] = (m[2], m[3], m[4] or "", int(m[5]))
    return rows


def _named(details: str) -> dict[str, str]:
    return {m[1]: m[2] for m in re.finditer(r"([a-z][a-z –-]*?) (\d+)(?:,|$)", details)}


@pytest.mark.slow
def test_docs_demo_numbers_are_what_the_demo_prints(demo_results):
    """Every number of the docs/demo.md table, from the run: acc and stderr as the table prints them
    (rounded to one decimal), per-phenomenon and per-kind accuracies, the per-voice range."""
    results, out = demo_results
    rows = _documented_rows()
    assert set(rows) == set(MINI_TASKS)
    for task, (acc, stderr, _, pairs) in rows.items():
        metrics = results["results"][task]
        assert (acc, stderr, pairs) == (f"{100 * metrics['acc']:.1f}", f"{100 * metrics['acc_stderr']:.1f}",
                                        metrics["n_pairs"]), task
    by_type = {k: 100 * v["acc"] for k, v in results["breakdowns"]["mini_sblimp"]["type"].items()}
    for label, value in _named(rows["mini_sblimp"][2]).items():
        key = label.replace(" ", "_").replace("–", "_")
        (match,) = [t for t in by_type if t == key] or [t for t in by_type if t.startswith(key)]
        assert f"{by_type[match]:.0f}" == value, label
    kinds = {r["story"]: r["negative_kind"] for r in csv.DictReader(
        (ASSETS / "items" / "mini_sstorycloze.tsv").open(), delimiter="\t")}
    samples = [json.loads(line) for line in (out / "samples_mini_sstorycloze.jsonl").read_text().splitlines()]
    per_kind = {k: 100 * np.mean([s["correct"] for s in samples if kinds[s["id"]] == k]) for k in set(kinds.values())}
    documented = _named(rows["mini_sstorycloze"][2])
    assert {k: f"{v:.0f}" for k, v in per_kind.items()} == {
        "pronoun": documented["wrong pronoun"], "mood": documented["wrong mood"],
        "object": documented["unmentioned object"]}
    voices = [100 * v["acc"] for v in results["breakdowns"]["mini_ms_sstorycloze"]["speaker"].values()]
    low, high = re.search(r"per voice (\d+)–(\d+)", rows["mini_ms_sstorycloze"][2]).groups()
    assert (f"{min(voices):.0f}", f"{max(voices):.0f}") == (low, high)
    each = int(re.search(r"(\d+) pairs each", rows["mini_ms_sstorycloze"][2])[1])
    assert {v["n_pairs"] for v in results["breakdowns"]["mini_ms_sstorycloze"]["speaker"].values()} == {each}


@pytest.mark.slow
def test_demo_run_is_official_data_on_the_bundled_board(demo_results):
    """leaderboard/official_tasks.json pins the mini tasks (from `pin-hashes` on a demo run): a fresh
    run of the bundled data matches every pin, so the board shows it as official data."""
    from slmeval.leaderboard import Board
    from slmeval.leaderboard.store import data_status

    results, _ = demo_results
    pins = Board(ROOT / "leaderboard").official_tasks()
    for task in MINI_TASKS:
        assert all(pins[task][k] is not None for k in ("items_sha256", "data_sha256", "meta_sha256", "version"))
        assert {k: results["provenance"]["task_hashes"][task][k] for k in pins[task]} == pins[task]
    status = data_status(results, pins)
    assert {task: status[task]["status"] for task in MINI_TASKS} == dict.fromkeys(MINI_TASKS, "official data")
