"""The main job end to end: the bundled demo model on the bundled mini tasks, through `slmeval.evaluate`
(the code path of `make demo` and of the real benchmarks). Model and data are fixed, so the accuracies
are deterministic; they are asserted against the targets the demo promises."""
from __future__ import annotations

import json
from pathlib import Path

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
