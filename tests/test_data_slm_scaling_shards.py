"""slm_scaling's packed evaluation shards as task data (`slm_scaling_shard` reader): the pairs their
metadata defines, scored as slm_scaling's evaluate.py scores them, and one clear error per broken shard.

Shards are written by tests/_slm_scaling_shard.py from slm_scaling's ShardWriter rules; the reference
decisions and sBLIMP aggregation are src/slm/evaluate.py `summarize`, transcribed below.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from _model_replicas import save_slm_scaling, slm_scaling_decision, slm_scaling_mean_nll_f64, squash
from _slm_scaling_shard import write_shard
from slmeval.cli import app
from slmeval.data import DataLayoutError, read_pairs

K = 500


def units(rng, n: int) -> list[int]:
    out = [int(rng.integers(0, K))]
    while len(out) < n:
        u = int(rng.integers(0, K))
        if u != out[-1]:
            out.append(u)
    return out


def sblimp_samples(seed: int = 0) -> list[tuple[str, list[int], dict]]:
    """Two phenomena, 3 minimal pairs each (pair_id), 2 voices per pair (group_id = pair + voice);
    options in shuffled order, as a manifest may list them."""
    rng = np.random.default_rng(seed)
    samples = []
    for phen in ("anaphor", "binding"):
        for p in range(3):
            for voice in ("v1", "v2"):
                for correct in (True, False):
                    sid = f"{phen}-{p}-{voice}-{'good' if correct else 'bad'}"
                    samples.append((sid, units(rng, int(rng.integers(3, 12))) + [K],
                                    {"group_id": f"{phen}-{p}-{voice}", "pair_id": f"{phen}-{p}", "phenomenon": phen,
                                     "correct": correct, "speaker": voice, "source_audio_name": f"{sid}.wav"}))
    order = rng.permutation(len(samples))
    return [samples[i] for i in order]


def test_pairs_follow_group_id_and_correct(tmp_path):
    samples = sblimp_samples()
    write_shard(tmp_path / "sblimp", samples, eos=K)
    pairs = read_pairs("slm_scaling_shard", tmp_path / "sblimp")
    by_id = {sid: (codes, meta) for sid, codes, meta in samples}
    groups = sorted({m["group_id"] for _, _, m in samples})
    assert sorted(p.id for p in pairs) == groups and len(pairs) == 12
    for p in pairs:
        pos, neg = by_id[p.positive.key], by_id[p.negative.key]
        assert pos[1]["correct"] and not neg[1]["correct"] and pos[1]["group_id"] == neg[1]["group_id"] == p.id
        assert list(p.positive.units) == pos[0][:-1] and list(p.negative.units) == neg[0][:-1]   # EOS split off
        assert p.meta["pair_id"] == pos[1]["pair_id"] and p.meta["phenomenon"] == pos[1]["phenomenon"]
        assert p.meta["speaker"] == pos[1]["speaker"] and "correct" not in p.meta and "group_id" not in p.meta
        assert p.meta["source_audio_name_positive"] == f"{p.positive.key}.wav"       # differing fields: both kept
        assert p.meta["source_audio_name_negative"] == f"{p.negative.key}.wav"


def test_storycloze_ids_group_by_their_suffix(tmp_path):
    """No group_id / correct: the id without _correct / _incorrect is the group, the suffix the answer."""
    rng = np.random.default_rng(1)
    samples = [(f"story{i}_{kind}", units(rng, 5) + [K], {"speaker": "af"}) for i in (2, 10, 1)
               for kind in ("incorrect", "correct")]
    write_shard(tmp_path / "sc", samples, eos=K)
    pairs = read_pairs("slm_scaling_shard", tmp_path / "sc")
    assert [p.id for p in pairs] == ["story1", "story2", "story10"]                 # natural order
    assert [(p.positive.key, p.negative.key) for p in pairs][0] == ("story1_correct", "story1_incorrect")
    assert pairs[0].meta == {"speaker": "af", "pair_id": "story1"}


def summarize_sblimp(rows: list[dict]) -> dict:
    """slm_scaling's summarize('sblimp') transcribed: a group's decision (1 / 0.5 tie / 0), its pair's
    score = mean over the pair's groups, phenomenon score = mean over its pairs; accuracy = mean over
    phenomena, pair_accuracy = mean over all pairs, voice_pair_accuracy = mean over groups."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["group_id"], []).append(r)
    decisions = []
    for options in groups.values():
        pos = next(r for r in options if r["correct"])
        neg = min(r["nll"] for r in options if not r["correct"])
        decisions.append((pos, slm_scaling_decision(pos["nll"], neg, "sblimp")))
    pairs: dict[str, list[tuple[str, float]]] = {}
    for row, value in decisions:
        pairs.setdefault(row["pair_id"], []).append((row["phenomenon"], value))
    by_phen: dict[str, list[float]] = {}
    for values in pairs.values():
        by_phen.setdefault(values[0][0], []).append(sum(v for _, v in values) / len(values))
    return {"accuracy": float(np.mean([np.mean(v) for v in by_phen.values()])),
            "pair_accuracy": float(np.mean([x for v in by_phen.values() for x in v])),
            "voice_pair_accuracy": float(np.mean([v for _, v in decisions]))}


def test_slmeval_run_on_a_shard_gives_slm_scalings_sblimp_numbers(tmp_path):
    """`slmeval run --protocol cuervo` on an slm_scaling shard task: every side's score is slm_scaling's
    per-row NLL (EOS start, terminal EOS not scored) and acc_macro / acc / acc_voice_pairs are its
    accuracy / pair_accuracy / voice_pair_accuracy."""
    ckpt = save_slm_scaling(tmp_path / "ckpt", seed=3)
    samples = sblimp_samples(seed=2)
    # two groups whose wrong option is the right one's units: exact ties, 0.5 on sBLIMP for slm_scaling,
    # which the task file's `tie_value_by_protocol` gives (cuervo alone gives 0)
    codes = {sid: c for sid, c, _ in samples}
    samples = [(sid, codes[sid.replace("-bad", "-good")] if sid in ("anaphor-0-v1-bad", "binding-2-v2-bad") else c, m)
               for sid, c, m in samples]
    write_shard(tmp_path / "data" / "sblimp_shard", samples, eos=K)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "shard_sblimp.yaml").write_text(
        "name: shard_sblimp\nfamily: voice_averaged\nsource: slm_scaling_shard\n"
        f"path: {tmp_path / 'data' / 'sblimp_shard'}\n"
        "grouping: {item: [pair_id], breakdown: [phenomenon], voice: speaker}\n"
        "headline_by_protocol: {cuervo: acc_macro}\ntie_value_by_protocol: {cuervo: 0.5}\nversion: 1\n")
    res = CliRunner().invoke(app, ["run", "--model", str(ckpt), "--tasks", "shard_sblimp", "--include-path",
                                   str(tmp_path / "tasks"), "--protocol", "cuervo", "--output", str(tmp_path / "out"),
                                   "--no-progress", "--no-cache"])
    assert res.exit_code == 0, res.output
    rows = [{**meta, "id": sid, "nll": slm_scaling_mean_nll_f64(ckpt, codes[:-1])} for sid, codes, meta in samples]
    ref = summarize_sblimp(rows)
    nll = {r["id"]: r["nll"] for r in rows}
    scored = [json.loads(line) for line in (tmp_path / "out" / "samples_shard_sblimp.jsonl").read_text().splitlines()]
    for s in scored:
        assert s["positive_score"] == pytest.approx(-nll[s["positive_key"]], abs=1e-5)
        assert s["negative_score"] == pytest.approx(-nll[s["negative_key"]], abs=1e-5)
    metrics = json.loads((tmp_path / "out" / "results.json").read_text())["results"]["shard_sblimp"]
    assert metrics["acc_macro"] == pytest.approx(ref["accuracy"])
    assert metrics["acc"] == pytest.approx(ref["pair_accuracy"])
    assert metrics["acc_voice_pairs"] == pytest.approx(ref["voice_pair_accuracy"])
    assert 0 < ref["accuracy"] < 1                                   # not a degenerate all-right / all-wrong set
    assert sum(s["positive_score"] == s["negative_score"] and s["correct"] == 0.5 for s in scored) == 2


def _corrupt(shard: Path, how: str) -> dict:
    """Break a written shard one way; returns the read options to use."""
    if how == "checksum":
        data = bytearray((shard / "audio.bin").read_bytes())
        data[0] ^= 1
        (shard / "audio.bin").write_bytes(bytes(data))
    elif how == "truncated":
        (shard / "audio.bin").write_bytes((shard / "audio.bin").read_bytes()[:-2])
        return {"verify_checksums": False}
    elif how in ("schema", "no_eos_token"):
        meta = json.loads((shard / "meta.json").read_text())
        if how == "schema":
            meta["schema_version"] = 1
        else:
            del meta["preprocessing"]["eos_token"]
        (shard / "meta.json").write_text(json.dumps(meta))
    elif how == "missing":
        (shard / "audio.len").unlink()
    return {}


@pytest.mark.parametrize("how,message", [
    ("checksum", r"audio\.bin: sha256 .* but meta\.json says"),
    ("truncated", r"audio\.bin: \d+ bytes; expected \d+"),
    ("schema", r"meta\.json: schema_version 1; this reader reads 2"),
    ("no_eos_token", r"preprocessing\.eos_token is missing"),
    ("missing", r"audio\.len is missing"),
])
def test_broken_shards_get_one_clear_error(tmp_path, how, message):
    shard = write_shard(tmp_path / "s", sblimp_samples()[:4], eos=K)
    options = _corrupt(shard, how)
    with pytest.raises(DataLayoutError, match=message):
        read_pairs("slm_scaling_shard", shard, **options)


@pytest.mark.parametrize("samples,message", [
    ([("a_correct", [1, 2, K], {}), ("a_incorrect", [3, K], {}), ("a_2", [4, K], {"group_id": "a", "correct": False})],
     r"group 'a' has 1 correct and 2 incorrect samples"),
    ([("x", [1, 2, K], {"group_id": "g", "correct": "false"}), ("y", [1, K], {"group_id": "g", "correct": True})],
     r"sample 'x' has correct = \"false\"; expected true or false"),
    ([("plain", [1, 2, K], {})], r"sample 'plain' has no group_id"),
    ([("a_correct", [1, K, 2, K], {}), ("a_incorrect", [3, K], {})], r"sample 'a_correct' holds code 500 before its end"),
    ([("a_correct", [K], {}), ("a_incorrect", [3, K], {})], r"sample 'a_correct' holds no unit before its EOS"),
])
def test_bad_groups_and_samples_are_named(tmp_path, samples, message):
    write_shard(tmp_path / "s", samples, eos=K)
    with pytest.raises(DataLayoutError, match=message):
        read_pairs("slm_scaling_shard", tmp_path / "s")


def test_loss_on_a_broken_shard_exits_2_naming_the_file(tmp_path):
    ckpt = save_slm_scaling(tmp_path / "ckpt", seed=1)
    shard = write_shard(tmp_path / "s", sblimp_samples()[:4], eos=K)
    _corrupt(shard, "checksum")
    res = CliRunner().invoke(app, ["loss", "--model", str(ckpt), "--data", str(shard)])
    assert res.exit_code == 2 and "audio.bin:sha256" in squash(res.output), res.output
    assert "Traceback" not in res.output
    ok = CliRunner().invoke(app, ["loss", "--model", str(ckpt), "--data", str(shard), "--no-verify"])
    assert ok.exit_code == 0, ok.output                              # the user may read it unverified


def test_shards_of_one_split_must_share_their_tokenizer(tmp_path):
    """Shards differ in their plan fields by design, never in what a unit means (HuBERT revision, k-means)."""
    pins = {"hubert_model": "slprl/mhubert-base-25hz", "hubert_revision": "a319086e", "hubert_layer": 11,
            "kmeans": {"name": "km500.bin", "sha256": "03cc04a9"}}
    write_shard(tmp_path / "split" / "shard-00000", [("a_correct", [1, 2, K], {}), ("a_incorrect", [3, K], {})], eos=K,
                preprocessing={**pins, "num_assigned_records": 2, "assignment_sha256": "x"})
    write_shard(tmp_path / "split" / "shard-00001", [("b_correct", [1, K], {}), ("b_incorrect", [4, K], {})], eos=K,
                preprocessing={**pins, "num_assigned_records": 2, "assignment_sha256": "y"})
    assert [p.id for p in read_pairs("slm_scaling_shard", tmp_path / "split")] == ["a", "b"]
    write_shard(tmp_path / "split" / "shard-00002", [("c_correct", [1, K], {}), ("c_incorrect", [4, K], {})], eos=K,
                preprocessing={**pins, "hubert_revision": "main"})
    with pytest.raises(DataLayoutError, match=r"shard-00002/meta\.json: preprocessing\.hubert_revision = 'main' but "
                                              r".*shard-00000/meta\.json has 'a319086e'"):
        read_pairs("slm_scaling_shard", tmp_path / "split")
