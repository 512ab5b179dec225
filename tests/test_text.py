"""`slmeval text` through real lm-eval on a tiny GPT-NeoX-shaped model and tiny BLiMP / StoryCloze files.

The per-item log-likelihoods and decisions are checked against an independent float64 computation
(one sequence per forward, full log-softmax) written here; the aggregate numbers against means of
those decisions computed here.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from slmeval.cli import app
from slmeval.io import read_jsonl
from slmeval.text.paradigms import BLIMP_TYPES, PARADIGM_TYPE, TASK_DIR, render_task_files
from _text_helpers import build_tiny_neox, write_storycloze_csv, write_tiny_blimp

TASKS = "text_blimp,text_storycloze,text_tstorycloze"


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    model = build_tiny_neox(root / "neox")
    data = root / "data"
    blimp = write_tiny_blimp(data)
    csv_path = write_storycloze_csv(root / "cloze_test_test__spring2016.csv")
    res = CliRunner().invoke(app, ["text-prepare", "storycloze", "--source", str(csv_path), "--data-root", str(data)])
    assert res.exit_code == 0, res.output
    out = root / "run"
    res = CliRunner().invoke(app, ["text", "--model", str(model), "--tasks", TASKS, "--data-root", str(data),
                                   "--output", str(out), "--batch-size", "4"])
    assert res.exit_code == 0, res.output
    return {"root": root, "model": model, "data": data, "out": out, "blimp": blimp, "output": res.output,
            "results": json.loads((out / "results.json").read_text())}


def _schema() -> dict:
    return json.loads((Path(__file__).resolve().parents[1] / "leaderboard/schema/results.schema.json").read_text())


class Float64Reference:
    """Sum log-probability of a continuation given a context, in float64, one sequence per forward."""

    def __init__(self, model_dir: Path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64).eval()

    def logprob(self, context: str, continuation: str) -> float:
        if context == "":   # no context: condition on BOS (Pythia's <|endoftext|>)
            ctx = [self.tok.bos_token_id]
            cont = self.tok(continuation, add_special_tokens=False).input_ids
        else:
            ctx = self.tok(context, add_special_tokens=False).input_ids
            whole = self.tok(context + continuation, add_special_tokens=False).input_ids
            assert whole[:len(ctx)] == ctx
            cont = whole[len(ctx):]
        ids = torch.tensor([ctx + cont])
        with torch.no_grad():
            logp = torch.log_softmax(self.model(ids).logits[0], dim=-1)
        return float(sum(logp[len(ctx) - 1 + i, t] for i, t in enumerate(cont)))


@pytest.fixture(scope="module")
def reference(text_run):
    return Float64Reference(text_run["model"])


def _story_context(data: Path, task: str) -> dict[str, dict]:
    return {str(i): row for i, row in enumerate(read_jsonl(data / task.removeprefix("text_") / "test.jsonl"))}


def test_blimp_items_and_macro_match_float64_reference(text_run, reference):
    samples = read_jsonl(text_run["out"] / "samples_text_blimp.jsonl")
    assert len(samples) == 67
    decisions: dict[str, list[float]] = {}
    for s, paradigm in zip(sorted(samples, key=lambda s: s["meta"]["subtype"]), sorted(PARADIGM_TYPE)):
        row = text_run["blimp"][paradigm][0]
        assert (s["meta"]["subtype"], s["positive_key"], s["negative_key"]) == \
            (paradigm, row["sentence_good"], row["sentence_bad"])
        good = reference.logprob("", " " + row["sentence_good"])
        bad = reference.logprob("", " " + row["sentence_bad"])
        assert s["positive_logprob"] == pytest.approx(good, abs=1e-3)
        assert s["negative_logprob"] == pytest.approx(bad, abs=1e-3)
        assert abs(good - bad) > 1e-3, "near-tie: pick other sentences"
        assert s["correct"] == float(good > bad)
        decisions.setdefault(PARADIGM_TYPE[paradigm], []).append(float(good > bad))
    metrics = text_run["results"]["results"]["text_blimp"]
    flat = [d for ds in decisions.values() for d in ds]
    assert 0 < sum(flat) < len(flat)                      # the tiny model is right on some items only
    assert metrics["acc"] == pytest.approx(np.mean(flat))
    assert metrics["acc_macro"] == pytest.approx(np.mean([np.mean(d) for d in decisions.values()]))
    assert metrics["acc_macro"] != pytest.approx(metrics["acc"])   # 12 types of unequal size
    assert set(text_run["results"]["breakdowns"]["text_blimp"]["type"]) == set(BLIMP_TYPES)
    # lm-eval's own file: its group number averages the 67 paradigms (lm-eval aggregates over leaves)
    lm_file = text_run["out"] / text_run["results"]["config"]["lm_eval"]["results_file"]
    lm = json.loads(lm_file.read_text())
    assert lm["results"]["text_blimp"]["acc,none"] == pytest.approx(np.mean(flat))
    for phenomenon, ds in decisions.items():
        assert lm["results"][f"text_blimp_{phenomenon}"]["acc,none"] == pytest.approx(np.mean(ds))


@pytest.mark.parametrize("task", ["text_storycloze", "text_tstorycloze"])
def test_storycloze_items_match_float64_reference(text_run, reference, task):
    stories = _story_context(text_run["data"], task)
    samples = read_jsonl(text_run["out"] / f"samples_{task}.jsonl")
    assert len(samples) == len(stories) == 6
    for s in samples:
        story = stories[str(s["meta"]["doc_id"])]
        context = " ".join(story[f"input_sentence_{i}"] for i in range(1, 5))
        right = story[f"sentence_quiz{story['answer_right_ending']}"]
        wrong = story[f"sentence_quiz{3 - story['answer_right_ending']}"]
        assert (s["context"], s["positive_key"], s["negative_key"]) == (context, right, wrong)
        pos, neg = reference.logprob(context, " " + right), reference.logprob(context, " " + wrong)
        assert (s["positive_logprob"], s["negative_logprob"]) == (pytest.approx(pos, abs=1e-3), pytest.approx(neg, abs=1e-3))
        assert s["correct"] == float(pos > neg)
    acc = text_run["results"]["results"][task]["acc"]
    assert acc == pytest.approx(np.mean([s["correct"] for s in samples]))


def test_outputs_lm_eval_files_and_slmeval_results(text_run):
    out, results = text_run["out"], text_run["results"]
    lm = results["config"]["lm_eval"]
    lm_results = json.loads((out / lm["results_file"]).read_text())
    assert lm_results["config"]["model_args"] == {"pretrained": str(text_run["model"])}   # a dict, as lm-eval writes
    assert lm_results["lm_eval_version"] == lm["version"]
    assert all((out / f).is_file() for f in lm["samples_files"]) and len(lm["samples_files"]) == 67 + 2
    assert results["config"]["modality"] == "text" and results["config"]["limit"] is None
    assert results["configs"]["text_blimp"]["twin"] == "sblimp"
    assert results["configs"]["text_tstorycloze"]["twin"] == "tstorycloze"
    assert results["configs"]["text_blimp"]["data_files"]["text_blimp_causative"] == \
        str(text_run["data"] / "blimp" / "causative.jsonl")
    # the leaderboard's schema and cross-field rules accept it
    from slmeval.leaderboard.store import validate_results

    validate_results(results, _schema(), source="text run")
    # slmeval check reads it like a speech run (the same run against itself: no regression)
    res = CliRunner().invoke(app, ["check", "--results", str(out), "--baseline", str(out)])
    assert res.exit_code == 0, res.output


def test_fit_reads_the_text_run_once(text_run, tmp_path):
    import pandas as pd

    from slmeval.scaling.tables import load_runs

    meta = tmp_path / "meta.csv"
    pd.DataFrame({"name": ["neox"], "N": [1e4], "D": [1e6]}).to_csv(meta, index=False)
    df = load_runs(text_run["root"] / "run", metadata=meta, name_from="model")
    assert len(df) == 1 and df.loc[0, "modality"] == "text" and df.loc[0, "name"] == "neox"
    assert df.loc[0, "sblimp/acc_macro"] == pytest.approx(text_run["results"]["results"]["text_blimp"]["acc_macro"])
    assert any("text_blimp -> sblimp" in n for n in df.attrs["notes"])


def test_limit_marks_a_partial_run_the_leaderboard_refuses(text_run, tmp_path):
    out = tmp_path / "partial"
    res = CliRunner().invoke(app, ["text", "--model-args", f"pretrained={text_run['model']}", "--tasks",
                                   "text_storycloze", "--data-root", str(text_run["data"]), "--limit", "2",
                                   "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert "partial run" in res.output
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["limit"] == 2 and results["results"]["text_storycloze"]["n_pairs"] == 2
    from slmeval.leaderboard.store import SubmissionError, validate_results

    with pytest.raises(SubmissionError, match=r"config.limit: a partial run \(--limit 2\)"):
        validate_results(results, _schema(), source="partial run")


def test_missing_column_is_one_clear_error(text_run, tmp_path):
    data = tmp_path / "data"
    rows = read_jsonl(text_run["data"] / "storycloze" / "test.jsonl")
    (data / "storycloze").mkdir(parents=True)
    (data / "storycloze" / "test.jsonl").write_text("".join(
        json.dumps({k: v for k, v in r.items() if k != "sentence_quiz2"}) + "\n" for r in rows))
    res = CliRunner().invoke(app, ["text", "--model", str(text_run["model"]), "--tasks", "text_storycloze",
                                   "--data-root", str(data)])
    assert res.exit_code == 2
    assert "storycloze/test.jsonl" in res.output and "'sentence_quiz2'" in res.output and "Traceback" not in res.output


def test_model_lm_eval_cannot_load_is_one_clear_error(text_run, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    for model in (str(broken), str(tmp_path / "missing")):
        res = CliRunner().invoke(app, ["text", "--model", model, "--tasks", "text_storycloze",
                                       "--data-root", str(text_run["data"])])
        assert res.exit_code == 2, res.output
        assert "lm-eval cannot load it" in res.output and "Traceback" not in res.output
    assert "--model" not in res.output.split("lm-eval cannot load it:")[1]   # named once, not twice


def test_unknown_task_and_missing_file_errors(text_run, tmp_path):
    res = CliRunner().invoke(app, ["text", "--model", str(text_run["model"]), "--tasks", "text_blimpp"])
    assert res.exit_code == 2 and "unknown task(s) ['text_blimpp']" in res.output
    # a task YAML that does not parse is skipped by lm-eval without a word: the error names it
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "mine.yaml").write_text("task: mine\n  oops: [\n")
    (inc / "fine.yaml").write_text("task: fine\nclass: !function utils.Fine\n")   # lm-eval's tags parse
    res = CliRunner().invoke(app, ["text", "--model", str(text_run["model"]), "--tasks", "mine",
                                   "--include-path", str(inc)])
    assert res.exit_code == 2 and "unknown task(s) ['mine']" in res.output
    assert "not valid YAML" in res.output and "mine.yaml" in res.output and "fine.yaml" not in res.output
    res = CliRunner().invoke(app, ["text", "--model", str(text_run["model"]), "--tasks", "text_tstorycloze",
                                   "--data-root", str(tmp_path)])
    assert res.exit_code == 2 and "tstorycloze/test.jsonl: no such file" in res.output
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["text", "--model", str(text_run["model"]), "--tasks", "../../victim/results",
                                   "--output", str(out)])
    assert res.exit_code == 2 and "cannot be used as a file name" in res.output and not out.exists()


def test_topic_storycloze_negatives_are_other_stories_endings(text_run):
    stories = read_jsonl(text_run["data"] / "storycloze" / "test.jsonl")
    topic = read_jsonl(text_run["data"] / "tstorycloze" / "test.jsonl")
    right = {s["story_id"]: s[f"sentence_quiz{s['answer_right_ending']}"] for s in stories}
    for s, t in zip(stories, topic):
        assert t["story_id"] == s["story_id"] and t["input_sentence_1"] == s["input_sentence_1"]
        assert t[f"sentence_quiz{t['answer_right_ending']}"] == right[s["story_id"]]
        assert t["negative_from_story"] != s["story_id"]
        assert t[f"sentence_quiz{3 - t['answer_right_ending']}"] == right[t["negative_from_story"]]
    manifest = json.loads((text_run["data"] / "tstorycloze" / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["n_stories"] == len(stories)


def test_shipped_blimp_task_files_are_the_generated_ones():
    files = render_task_files()
    assert sum(1 for n in files if not n.startswith("_")) == 67 == len(PARADIGM_TYPE)
    assert len(BLIMP_TYPES) == 12
    for name, text in files.items():
        assert (TASK_DIR / name).read_text() == text, f"{name}: regenerate with python -m slmeval.text.paradigms"
    # every type group lists its paradigms; the paradigms are upstream lm-eval's 67 BLiMP tasks
    import lm_eval

    upstream = yaml.safe_load((Path(lm_eval.__file__).parent / "tasks/blimp/_blimp.yaml").read_text())["task"]
    assert sorted(t.removeprefix("blimp_") for t in upstream) == sorted(PARADIGM_TYPE)
    assert math.isclose(sum(len(p) for p in BLIMP_TYPES.values()), 67)
