"""End to end for sWUGGY (ZeroSpeech 2021 and slamkit layouts), SALMon, sBLIMP with unbalanced voices
and the ZeroSpeech submission: espeak-ng speech in the published layouts → logmel units → a tiny LM →
results, checked against references written in the tests (the official scorers' arithmetic restated,
the official validator's rules, slamkit's / SALMon's pair mean)."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import slmeval
from _data_helpers import SWUGGY_ITEMS, VOICES, make_salmon, make_sblimp, make_swuggy, make_swuggy_slamkit, speech
from _zerospeech_reference import official_lexical, official_syntactic, validate
from conftest import N_UNITS, naive_logprobs
from slmeval.audio import load_audio, write_audio
from slmeval.cli import app
from slmeval.data.salmon import PARTS
from slmeval.task_loader.registry import TaskError
from slmeval.scoring import PRESETS, build_tokens
from slmeval.units import fit_logmel_kmeans, load_tokenizer

TASKS = ["sblimp", "swuggy", "swuggy_inter", "salmon"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    # unbalanced voices: one sBLIMP item and one sWUGGY word lack their second voice
    make_sblimp(root / "sLM21-dataset", items_per_type=2,
                skip=frozenset({("subject_verb_agreement", 2, VOICES[1])}))
    make_swuggy(root / "sLM21-dataset", skip=frozenset({("2", VOICES[1])}))
    make_swuggy_slamkit(root / "swuggy_inter")
    make_salmon(root / "salmon_benchmark", PARTS, n_samples=2)
    train = tmp_path_factory.mktemp("train")
    files = []
    for i, (text, voice) in enumerate([("water garden window", "en-us"), ("the cat sleeps on the mat", "en-gb+f3")]):
        write_audio(train / f"{i}.wav", speech(text, voice))
        files.append(train / f"{i}.wav")
    tok_dir = fit_logmel_kmeans(files, k=N_UNITS, out_dir=tmp_path_factory.mktemp("tok"), progress=False)
    return {"root": root, "tok": str(tok_dir), "cache": tmp_path_factory.mktemp("cache")}


@pytest.fixture(scope="module")
def run(world, tiny_llama_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    results = slmeval.evaluate(tiny_llama_dir, TASKS, data_root=world["root"], tokenizer=world["tok"], output=out,
                               cache_dir=world["cache"], batch_size=8, export="zerospeech", progress=False)
    samples = {t: [json.loads(x) for x in (out / f"samples_{t}.jsonl").read_text().splitlines()] for t in TASKS}
    return results, out, samples


def test_sample_scores_are_the_naive_float64_ones(run, world, tiny_llama_dir):
    _, _, samples = run
    tok = load_tokenizer(world["tok"])
    lm = slmeval.models.load_lm(tiny_llama_dir)
    for task in ("swuggy", "salmon"):                 # the new readers' files reach the model as they are
        for row in samples[task][:2]:
            for side in ("positive", "negative"):
                tokens = build_tokens(tok.encode(load_audio(row[f"{side}_file"])).tolist(), lm, PRESETS["slmeval"])
                assert row[f"{side}_score"] == pytest.approx(float(naive_logprobs(tiny_llama_dir, tokens).mean()),
                                                             abs=1e-5)


def test_sblimp_headline_is_the_official_number(run, world):
    results, out, samples = run
    m = results["results"]["sblimp"]
    gold = world["root"] / "sLM21-dataset/syntactic/dev/gold.csv"
    assert m["acc"] == pytest.approx(official_syntactic(gold, out / "zerospeech/syntactic/dev.txt"), abs=1e-12)
    assert m["acc_voice_pairs"] == pytest.approx(np.mean([s["correct"] for s in samples["sblimp"]]), abs=1e-12)
    assert (m["n_pairs"], m["n_minimal_pairs"]) == (7, 4)
    assert results["configs"]["sblimp"]["headline"] == "acc" and results["versions"]["sblimp"] == 2


def test_swuggy_zr2021_against_the_official_arithmetic(run, world):
    results, out, samples = run
    m = results["results"]["swuggy"]
    gold = world["root"] / "sLM21-dataset/lexical/dev/gold.csv"
    assert (m["acc"], m["acc_in_vocab"]) == pytest.approx(official_lexical(gold, out / "zerospeech/lexical/dev.txt"),
                                                         abs=1e-12)
    assert m["n_pairs"] == 2 * len(SWUGGY_ITEMS) - 1 and m["n_minimal_pairs"] == len(SWUGGY_ITEMS)
    bands = results["breakdowns"]["swuggy"]["frequency_band"]
    assert set(bands) == {"oov", "1-5", "6-20", "21-100", ">100"} and all(b["n_items"] == 1 for b in bands.values())
    assert set(results["breakdowns"]["swuggy"]["voice"]) == set(VOICES)


def test_swuggy_slamkit_layout_is_the_mean_over_pairs(run):
    results, _, samples = run
    rows = samples["swuggy_inter"]
    # slamkit's modelling_metric: 1 / 0.5 / 0 per pair from the two scores, then the plain mean
    credit = [1.0 if r["positive_score"] > r["negative_score"] else 0.5 if r["positive_score"] == r["negative_score"]
              else 0.0 for r in rows]
    assert results["results"]["swuggy_inter"]["acc"] == pytest.approx(float(np.mean(credit)), abs=1e-12)
    words = {w for w, *_ in SWUGGY_ITEMS}
    assert len(rows) == 12 and all(r["positive_key"].split("_", 1)[1] in words for r in rows)


def test_salmon_parts_and_their_mean(run):
    results, _, samples = run
    per_part = defaultdict(list)
    for r in samples["salmon"]:
        assert Path(r["positive_file"]).stem.endswith("_0") and Path(r["negative_file"]).stem.endswith("_1")
        per_part[r["meta"]["part"]].append(1.0 if r["positive_score"] > r["negative_score"] else
                                           0.5 if r["positive_score"] == r["negative_score"] else 0.0)
    table = results["breakdowns"]["salmon"]["part"]
    assert set(table) == set(PARTS)
    for part, credits in per_part.items():     # salmon.py: per part, the mean of the pair credits
        assert table[part]["acc"] == pytest.approx(float(np.mean(credits)), abs=1e-12)
    m = results["results"]["salmon"]
    assert m["acc_macro"] == pytest.approx(float(np.mean([np.mean(c) for c in per_part.values()])), abs=1e-12)
    assert results["configs"]["salmon"]["headline"] == "acc_macro"


def test_the_submission_passes_the_official_rules(run, world):
    _, out, _ = run
    submission = out / "zerospeech"
    assert validate(world["root"] / "sLM21-dataset", submission, only_dev=True, tracks=("lexical", "syntactic")) == []


def test_export_without_a_zerospeech_task_is_an_error_before_any_work(world, tiny_llama_dir, tmp_path):
    with pytest.raises(TaskError, match=r"--export zerospeech: none of the selected tasks declares it \(salmon\)"):
        slmeval.evaluate(tiny_llama_dir, ["salmon"], data_root=world["root"], tokenizer=world["tok"],
                         output=tmp_path, export="zerospeech", progress=False)
    assert not any(tmp_path.iterdir())
    res = CliRunner().invoke(app, ["run", "--model", str(tiny_llama_dir), "--tasks", "swuggy_inter",
                                   "--data-root", str(world["root"]), "--tokenizer", world["tok"],
                                   "--export", "zerospeech", "--no-progress"])
    assert res.exit_code == 2 and "none of the selected tasks declares it" in res.output


def test_two_tasks_for_one_submission_file_are_refused_before_any_work(world, tiny_llama_dir, tmp_path):
    extra = tmp_path / "tasks"
    extra.mkdir()
    (extra / "sblimp_copy.yaml").write_text(
        "name: sblimp_copy\nsource: zerospeech_sblimp\npath: sLM21-dataset\noptions: {split: dev}\n"
        "exports: {zerospeech: {track: syntactic}}\n")
    with pytest.raises(ValueError, match="'sblimp' and 'sblimp_copy' would both write zerospeech/syntactic/dev.txt"):
        slmeval.evaluate(tiny_llama_dir, ["sblimp", "sblimp_copy"], data_root=world["root"], tokenizer=world["tok"],
                         include_path=[extra], output=tmp_path / "out", export="zerospeech", progress=False)
    assert not (tmp_path / "out").exists()



def test_numbers_re_derive_from_the_samples_and_check_passes(run):
    """slmeval.results.verify recomputes every metric through the task's family (voice_averaged,
    zerospeech_lexical, pairs with a part breakdown); `slmeval check` relies on it."""
    from slmeval.check import compare_runs, load_run
    from slmeval.results.verify import verify_run

    results, out, samples = run
    m = results["results"]["sblimp"]
    assert m["acc"] != pytest.approx(m["acc_voice_pairs"])     # unbalanced voices: the two numbers differ
    verify_run(json.loads((out / "results.json").read_text()), samples, source=str(out))
    assert compare_runs(load_run(out), load_run(out)).passed
