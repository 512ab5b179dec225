"""End to end: espeak-ng speech in every published layout → logmel units → tiny LMs → results files."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import slmeval
import slmeval.io
from _units_helpers import CountingTokenizer
from _data_helpers import make_hf_parquet, make_paired, make_sblimp, make_storycloze, make_units_jsonl, speech
from conftest import N_UNITS, naive_logprobs
from slmeval.audio import load_audio, write_audio
from slmeval.cli import app
from slmeval.task_loader.registry import TaskError
from slmeval.scoring import PRESETS, build_tokens
from slmeval.units import TokenizerError, fit_logmel_kmeans, load_tokenizer

EXTRA_TASKS = """
- {name: t_ms, source: storycloze, path: ms_story, options: {multispeaker: true}, grouping: {voice: speaker}}
- {name: t_paired, family: pairs, source: paired_folder, path: paired, options: {sep: "_"}}
- {name: t_hf, family: pairs, source: hf_pairs, path: hf/pairs.parquet}
- {name: t_units, family: pairs, source: units_jsonl, path: units.jsonl}
"""
ALL = ["sblimp", "sstorycloze", "t_ms", "t_paired", "t_hf", "t_units"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_sblimp(root / "sLM21-dataset", items_per_type=2)
    make_storycloze(root / "sStoryCloze")
    make_storycloze(root / "ms_story", multispeaker=True)
    make_paired(root / "paired", sep="_", n_pairs=3)
    make_hf_parquet(root / "hf" / "pairs.parquet", n_pairs=3)
    make_units_jsonl(root / "units.jsonl", n_pairs=5, n_units=N_UNITS)
    tasks_dir = tmp_path_factory.mktemp("tasks")
    (tasks_dir / "extra.yaml").write_text(EXTRA_TASKS)
    train = tmp_path_factory.mktemp("train")
    files = []
    for i, (text, voice) in enumerate([("a quick brown fox jumps", "en-us"), ("over the lazy dog", "en-gb+f3"),
                                       ("stories end with a twist", "en-us")]):
        write_audio(train / f"{i}.wav", speech(text, voice))
        files.append(train / f"{i}.wav")
    tok_dir = fit_logmel_kmeans(files, k=N_UNITS, out_dir=tmp_path_factory.mktemp("tok"), progress=False)
    return {"root": root, "tasks": tasks_dir, "tok": str(tok_dir), "cache": tmp_path_factory.mktemp("cache")}


@pytest.fixture(scope="module")
def llama_run(world, tiny_llama_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    tok = CountingTokenizer(load_tokenizer(world["tok"]))
    results = slmeval.evaluate(tiny_llama_dir, ALL, data_root=world["root"], tokenizer=tok, output=out,
                               include_path=[world["tasks"]], cache_dir=world["cache"], batch_size=5,
                               export="zerospeech", progress=False)
    return results, out, tok


def _samples(out: Path, task: str) -> list[dict]:
    return [json.loads(line) for line in (out / f"samples_{task}.jsonl").read_text().splitlines()]


def test_results_file_is_what_evaluate_returns(llama_run):
    results, out, _ = llama_run
    assert json.loads((out / "results.json").read_text()) == json.loads(slmeval.io.dumps(results))
    assert set(results["results"]) == set(ALL)
    cfg = results["config"]
    assert cfg["protocol"] == {**PRESETS["slmeval"].to_dict()}
    assert cfg["unit_mapping"]["offset"] == 3 and cfg["unit_mapping"]["sources"]["offset"] == "config.json:offset"
    assert cfg["tokenizer"]["kind"] == "logmel" and cfg["logprob_backend"] == "torch"
    prov = results["provenance"]
    assert len(prov["model_sha256"]) == 64 and prov["slmeval_version"] == slmeval.__version__
    assert set(prov["task_hashes"]) == set(ALL)
    assert results["configs"]["sblimp"]["options"]["split"] == "dev"   # from the task file
    assert results["n_samples"] == {"sblimp": 8, "sstorycloze": 3, "t_ms": 6, "t_paired": 3, "t_hf": 3, "t_units": 5}


def test_sample_scores_equal_naive_float64(llama_run, world, tiny_llama_dir):
    results, out, _ = llama_run
    tok = load_tokenizer(world["tok"])
    lm = slmeval.models.load_lm(tiny_llama_dir)
    units_by_key = {json.loads(line)["id"]: json.loads(line) for line in (world["root"] / "units.jsonl").read_text().splitlines()}
    for task in ALL:
        rows = _samples(out, task)
        for row in rows:
            for side in ("positive", "negative"):
                if task == "t_units":
                    units = units_by_key[int(row["id"])][side]
                elif task == "t_hf":
                    continue   # bytes sources: covered through the same path as files
                else:
                    units = tok.encode(load_audio(row[f"{side}_file"])).tolist()
                tokens = build_tokens(units, lm, PRESETS["slmeval"])
                ref = naive_logprobs(tiny_llama_dir, tokens)
                assert row[f"{side}_n"] == len(units) == len(tokens) - 1
                assert row[f"{side}_logprob"] == pytest.approx(float(ref.sum()), abs=1e-4)
                assert row[f"{side}_score"] == pytest.approx(float(ref.mean()), abs=1e-5)
            expected = 1.0 if row["positive_score"] > row["negative_score"] else 0.0
            assert row["correct"] == (0.5 if row["positive_score"] == row["negative_score"] else expected)
        acc = results["results"][task]["acc"]
        assert acc == pytest.approx(np.mean([r["correct"] for r in rows]))
    speakers = results["breakdowns"]["t_ms"]["speaker"]
    assert set(speakers) == {"en-us", "en-gb+f3"} and all(v["n_pairs"] == 3 for v in speakers.values())


def test_batch_size_invariance_and_cache(world, tiny_llama_dir, tiny_opt_dir, llama_run, tmp_path):
    _, out, first_tok = llama_run
    assert first_tok.calls > 0
    tok = CountingTokenizer(load_tokenizer(world["tok"]))
    again = slmeval.evaluate(tiny_llama_dir, ["sblimp", "sstorycloze"], data_root=world["root"], tokenizer=tok,
                             cache_dir=world["cache"], batch_size=1, output=tmp_path / "b1", progress=False)
    assert tok.calls == 0                                   # every unit came from the cache
    for task in ("sblimp", "sstorycloze"):
        for a, b in zip(_samples(out, task), _samples(tmp_path / "b1", task)):
            assert abs(a["positive_logprob"] - b["positive_logprob"]) <= 1e-5
            assert abs(a["negative_logprob"] - b["negative_logprob"]) <= 1e-5
        assert again["provenance"]["task_hashes"][task]["data_sha256"] == \
            json.loads((out / "results.json").read_text())["provenance"]["task_hashes"][task]["data_sha256"]
    # a second checkpoint (other architecture and convention) on the same task: no audio work either
    other = slmeval.evaluate(tiny_opt_dir, ["sstorycloze"], data_root=world["root"], tokenizer=tok,
                             cache_dir=world["cache"], model_args="convention=slamkit", protocol="slamkit",
                             progress=False)
    assert tok.calls == 0
    assert other["config"]["unit_mapping"]["sources"]["offset"] == "convention:slamkit"


def test_zerospeech_export_rescored_gives_reported_accuracy(llama_run, world):
    results, out, _ = llama_run
    scores = dict(line.split() for line in (out / "zerospeech" / "syntactic" / "dev.txt").read_text().splitlines())
    gold = list(csv.DictReader((world["root"] / "sLM21-dataset" / "syntactic" / "dev" / "gold.csv").open()))
    assert set(scores) == {g["filename"] for g in gold}
    groups: dict[tuple, dict] = {}
    for g in gold:   # an independent re-scoring, the way the sLM21 scorer pairs files
        groups.setdefault((g["type"], g["subtype"], g["id"], g["voice"]), {})[g["correct"]] = float(scores[g["filename"]])
    credit = [1.0 if s["1"] > s["0"] else 0.5 if s["1"] == s["0"] else 0.0 for s in groups.values()]
    assert np.mean(credit) == pytest.approx(results["results"]["sblimp"]["acc"])


def test_missing_real_data_says_how_to_get_it(world, tiny_llama_dir, tmp_path, monkeypatch):
    # no network in tests (conftest): the download of the task's public copy fails, and the error still says
    # where the local layout was looked for and how to get the data
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    with pytest.raises(TaskError, match=r"(?s)downloading .*sStoryCloze failed.*no data at .*sStoryCloze.*"
                                        r"How to get it.*mini tasks"):
        slmeval.evaluate(tiny_llama_dir, ["sstorycloze"], data_root=tmp_path, tokenizer=world["tok"], progress=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")   # offline with a cold cache: the exact pull command, nothing fetched
    with pytest.raises(TaskError, match=r"not in the cache, and HF_HUB_OFFLINE=1 .*`slmeval data pull sstorycloze`"):
        slmeval.evaluate(tiny_llama_dir, ["sstorycloze"], data_root=tmp_path, tokenizer=world["tok"], progress=False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    # No tokenizer for an audio task: said before the data is even looked for (slmeval/run_setup.py).
    with pytest.raises(TokenizerError, match="hold audio, and no tokenizer is known for this model.*Pass --tokenizer"):
        slmeval.evaluate(tiny_llama_dir, ["sstorycloze"], data_root=tmp_path, progress=False)


def test_resume_reuses_finished_tasks(world, tiny_llama_dir, tmp_path, monkeypatch):
    kwargs = dict(data_root=world["root"], tokenizer=world["tok"], cache_dir=world["cache"], output=tmp_path,
                  include_path=[world["tasks"]], progress=False)
    reference = slmeval.evaluate(tiny_llama_dir, ["t_units", "sstorycloze"], **{**kwargs, "output": None})
    real_run_task = slmeval.evaluator.run_task
    computed = []

    def interrupted(cfg, *a, **k):      # the run dies on its second task, as a killed job would
        if cfg.name == "sstorycloze":
            raise KeyboardInterrupt
        return real_run_task(cfg, *a, **k)

    def counting(cfg, *a, **k):
        computed.append(cfg.name)
        return real_run_task(cfg, *a, **k)

    monkeypatch.setattr("slmeval.evaluator.run_task", interrupted)
    with pytest.raises(KeyboardInterrupt):
        slmeval.evaluate(tiny_llama_dir, ["t_units", "sstorycloze"], **kwargs)
    assert (tmp_path / ".partial" / "t_units.json").is_file() and not (tmp_path / "results.json").exists()
    monkeypatch.setattr("slmeval.evaluator.run_task", counting)
    resumed = slmeval.evaluate(tiny_llama_dir, ["t_units", "sstorycloze"], resume=True, **kwargs)
    assert computed == ["sstorycloze"] and resumed["results"] == reference["results"]
    assert resumed["provenance"]["resumed"]["t_units"].startswith("reused")
    assert not (tmp_path / ".partial").exists()          # cleaned once results.json is written


def test_cli_run_and_tasks(world, tiny_llama_dir, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["run", "--model", str(tiny_llama_dir), "--tasks", "sstorycloze,t_units",
                              "--data-root", str(world["root"]), "--tokenizer", world["tok"],
                              "--include-path", str(world["tasks"]), "--cache-dir", str(world["cache"]),
                              "--output", str(tmp_path), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "sstorycloze" in res.output and (tmp_path / "samples_t_units.jsonl").is_file()
    res = runner.invoke(app, ["run", "--model", str(tiny_llama_dir), "--tasks", "nope", "--no-progress"])
    assert res.exit_code == 2 and "unknown task" in res.output
    res = runner.invoke(app, ["tasks"])
    assert res.exit_code == 0 and "sblimp" in res.output and "gold.csv" in res.output


def test_limit_scores_the_first_pairs_and_marks_a_partial_run(world, tiny_llama_dir, llama_run, tmp_path):
    _, full_out, _ = llama_run
    res = CliRunner().invoke(app, ["run", "--model", str(tiny_llama_dir), "--tasks", "t_units", "--limit", "2",
                                   "--data-root", str(world["root"]), "--include-path", str(world["tasks"]),
                                   "--output", str(tmp_path), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "partial run" in res.output
    partial = json.loads((tmp_path / "results.json").read_text())
    assert partial["config"]["limit"] == 2 and partial["results"]["t_units"]["n_pairs"] == 2
    full = _samples(full_out, "t_units")
    assert _samples(tmp_path, "t_units") == full[:2]           # the first two pairs, scored alike
    resumed = slmeval.evaluate(tiny_llama_dir, ["t_units"], data_root=world["root"], output=tmp_path,
                               include_path=[world["tasks"]], resume=True, progress=False)
    assert resumed["results"]["t_units"]["n_pairs"] == len(full)   # a partial task is not reused for a full run
    res = CliRunner().invoke(app, ["run", "--model", str(tiny_llama_dir), "--tasks", "t_units", "--limit", "0",
                                   "--data-root", str(world["root"]), "--include-path", str(world["tasks"])])
    assert res.exit_code == 2 and "--limit 0" in res.output
