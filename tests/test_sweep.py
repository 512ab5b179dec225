"""`slmeval sweep` → `slmeval fit` on tiny checkpoints: audio encoded once, N counted from the model, D from
metadata or the checkpoint, a broken checkpoint reported while the rest go on, resume per checkpoint."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from _units_helpers import CountingTokenizer
from slmeval.cli import app
from slmeval.sweep import Checkpoint, SweepError, expand_models, run_sweep
from slmeval.units import load_tokenizer

REPO = Path(__file__).resolve().parents[1]
TOKENIZER = REPO / "audio_assets" / "demo_tokenizer"          # K = 100
TASKS = "name: sweep_story\nsource: storycloze\npath: ./story\n"


def _tiny_llama(path: Path, hidden: int, layers: int, seed: int) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=103, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512, pad_token_id=0,
                      bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    LlamaForCausalLM(cfg).save_pretrained(path)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "offset": 3}))
    return path


def _reference_n(path: Path) -> int:
    """Independent count: every parameter whose name is not the token embedding or the LM head."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path)
    return sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n and "lm_head" not in n)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    ckpts = root / "ckpts"
    for i, (hidden, layers) in enumerate([(16, 1), (24, 1), (32, 2)]):
        _tiny_llama(ckpts / f"s{i}", hidden, layers, seed=i)
    (ckpts / "s1" / "trainer_state.json").write_text(json.dumps({"global_step": 10, "num_input_tokens_seen": 4e5}))
    shutil.copytree(REPO / "audio_assets" / "demo_model", ckpts / "s3")      # trained; training.json: train_tokens
    (ckpts / "s2b").mkdir()
    (ckpts / "s2b" / "config.json").write_text("{not json")                    # fails to load
    pd.DataFrame({"name": ["s0", "s2", "s2b"], "D": [1e5, 2e5, 3e5]}).to_csv(root / "meta.csv", index=False)
    tasks = root / "tasks"
    (tasks / "story").mkdir(parents=True)
    for f in (REPO / "audio_assets" / "mini_sstorycloze").iterdir():
        if f.name.split("_")[0].isdigit() and int(f.name.split("_")[0]) < 24:
            shutil.copy(f, tasks / "story" / f.name)
    (tasks / "sweep.yaml").write_text(TASKS)
    return {"root": root, "ckpts": ckpts, "tasks": tasks, "meta": root / "meta.csv"}


@pytest.fixture(scope="module")
def swept(suite, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    tok = CountingTokenizer(load_tokenizer(str(TOKENIZER)))
    report = run_sweep(expand_models(str(suite["ckpts"] / "s*")), ["sweep_story"], output=out, tokenizer=tok,
                       metadata=suite["meta"], include_path=[suite["tasks"]], use_cache=False, progress=False)
    return out, report, tok


def test_sweep_encodes_audio_once_and_writes_the_runs_table(suite, swept):
    out, report, tok = swept
    assert tok.calls == 24                      # 12 pairs = 24 files, once for 5 checkpoints (no unit cache)
    assert [f["name"] for f in report.failures] == ["s2b"] and report.failures[0]["stage"] == "load"
    table = pd.read_csv(out / "runs.csv")
    assert table["name"].tolist() == ["s0", "s1", "s2", "s3"]
    for name, n in zip(table["name"], table["N"]):
        assert n == _reference_n(suite["ckpts"] / name) or name == "s3"
    # the demo model ties its head to the embeddings: only the embedding is left out
    from transformers import AutoModelForCausalLM

    demo = AutoModelForCausalLM.from_pretrained(suite["ckpts"] / "s3")
    assert table.loc[3, "N"] == sum(p.numel() for p in demo.parameters()) - demo.get_input_embeddings().weight.numel()
    assert table["D"].tolist() == [1e5, 4e5, 2e5, 792064.0]          # metadata, trainer_state, metadata, training.json
    assert table["D_source"].tolist()[1:] == ["trainer_state.json:num_input_tokens_seen", "metadata " + str(suite["meta"]),
                                              "training.json:train_tokens"]
    for name in ("s0", "s3"):       # the table holds exactly what each checkpoint's results.json says
        results = json.loads((out / name / "results.json").read_text())
        row = table[table["name"] == name].iloc[0]
        assert row["sweep_story/acc"] == results["results"]["sweep_story"]["acc"]
    assert "sweep_story/n_pairs" not in table
    assert json.loads((out / "sweep.json").read_text())["failures"][0]["error"].startswith("ModelError")


def test_fit_reads_the_sweep_table_as_is(swept, tmp_path):
    out, _, _ = swept
    result = CliRunner().invoke(app, ["fit", str(out / "runs.csv"), "--out", str(tmp_path / "fit"),
                                      "--bootstrap", "0", "--no-plots"])
    assert result.exit_code == 0, result.output
    fit = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert fit["n_runs"] == 4
    # no loss column: the loss law is skipped with its reason; the metric gets its γq (the trained demo model,
    # most compute, beats the random ones)
    assert any(s["analysis"] == "loss_law" and "with a loss" in s["reason"] for s in fit["skipped"])
    gamma = fit["gamma_q"]["sweep_story/acc | speech"]
    assert gamma["n_runs"] == 4 and gamma["n_envelope"] >= 2
    assert "sweep_story/acc" in (tmp_path / "fit" / "report.md").read_text()


def test_resume_skips_finished_checkpoints_and_retries_failed_ones(suite, swept, tmp_path):
    out = tmp_path / "sweep"
    shutil.copytree(swept[0], out)
    stamps = {n: (out / n / "results.json").stat().st_mtime_ns for n in ("s0", "s1", "s2", "s3")}
    shutil.rmtree(out / "s2")                                        # as if killed before s2 finished
    args = ["sweep", "--models", str(suite["ckpts"] / "s*"), "--tasks", "sweep_story", "--tokenizer", str(TOKENIZER),
            "--include-path", str(suite["tasks"]), "--metadata", str(suite["meta"]), "--output", str(out),
            "--cache-dir", str(tmp_path / "cache"), "--resume", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output                      # s2b still fails: non-zero at the end
    assert "s2b" in result.output and "load" in result.output
    for name in ("s0", "s1", "s3"):
        assert (out / name / "results.json").stat().st_mtime_ns == stamps[name]      # not evaluated again
    assert (out / "s2" / "results.json").is_file()
    assert pd.read_csv(out / "runs.csv").equals(pd.read_csv(swept[0] / "runs.csv"))


def test_a_sweep_of_fewer_checkpoints_says_which_rows_leave_the_table(suite, swept, tmp_path, caplog):
    out = tmp_path / "sweep"
    shutil.copytree(swept[0], out)
    with caplog.at_level("WARNING", logger="slmeval.sweep"):
        run_sweep([Checkpoint("s0", str(suite["ckpts"] / "s0"))], ["sweep_story"], output=out,
                  tokenizer=str(TOKENIZER), include_path=[suite["tasks"]], metadata=suite["meta"],
                  use_cache=False, resume=True, progress=False)
    assert pd.read_csv(out / "runs.csv")["name"].tolist() == ["s0"]
    warned = [r.getMessage() for r in caplog.records if "rewritten without" in r.getMessage()]
    assert len(warned) == 1 and "3 checkpoint(s)" in warned[0] and "s1, s2, s3" in warned[0], warned
    assert (out / "s1" / "results.json").is_file()                     # the results themselves stay


def test_bad_sweep_input_fails_before_any_work(suite, tmp_path):
    with pytest.raises(SweepError, match="matches no checkpoint folder"):
        expand_models(str(tmp_path / "none*"))
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two with one name\n{suite['ckpts'] / 's0'}\nx/s0=nope\n")
    with pytest.raises(SweepError, match="not a checkpoint folder"):
        expand_models(listing)
    listing.write_text(f"{suite['ckpts'] / 's0'}\n{tmp_path / 'other'}/s0\n")
    (tmp_path / "other" / "s0").mkdir(parents=True)
    with pytest.raises(SweepError, match="two checkpoints are named 's0'"):
        expand_models(listing)
    listing.write_text(f"big={suite['ckpts'] / 's0'}  # renamed\n")
    assert expand_models(listing) == [Checkpoint("big", str(suite["ckpts"] / "s0"))]
    result = CliRunner().invoke(app, ["sweep", "--models", str(suite["ckpts"] / "s0"), "--tasks", "sweep_story",
                                      "--include-path", str(suite["tasks"]), "--output", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no training-token count D for ['s0']" in result.output
    assert not (tmp_path / "o").exists()


def _sweep_on_rank(rank: int, port: int, lists: list, kwargs: dict, out) -> None:
    import os

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    report = run_sweep(lists[rank], **kwargs)
    out[rank] = (report.rows, report.failures)


def _two_ranks(lists: list, kwargs: dict) -> dict:
    """run_sweep on two gloo ranks (rank r sweeps lists[r]) → {rank: (rows, failures)}."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = mp.Manager().dict()
    mp.spawn(_sweep_on_rank, args=(port, lists, kwargs, out), nprocs=2, join=True)
    return dict(out)


def _units_task(folder: Path) -> dict:
    """A 16-pair units task (no audio work): run_sweep keyword arguments that select it."""
    import numpy as np

    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = [{"id": f"p{i}", "positive": rng.integers(0, 100, int(rng.integers(5, 40))).tolist(),
             "negative": rng.integers(0, 100, int(rng.integers(5, 40))).tolist()} for i in range(16)]
    (folder / "units.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "sweep_units.yaml").write_text("name: sweep_units\nsource: units_jsonl\npath: ./units.jsonl\n")
    return dict(tasks=["sweep_units"], include_path=[folder], progress=False)


def test_a_checkpoint_that_fails_to_load_on_one_rank_is_skipped_by_every_rank(suite, tmp_path):
    """Multi-node sweeps read checkpoints from each node's disk: if one rank cannot load a checkpoint, no rank
    evaluates it (a rank that skipped it alone would pair its next checkpoint's scores with this one's)."""
    ckpts = suite["ckpts"]
    good = [Checkpoint(n, str(ckpts / n)) for n in ("s0", "s2", "s3")]
    on_rank1 = [good[0], Checkpoint("s2", str(ckpts / "s2b")), good[2]]          # s2 is broken on this "node"
    kwargs = {**_units_task(tmp_path / "tasks"), "metadata": suite["meta"]}
    reference = run_sweep(good, output=tmp_path / "one", **kwargs)
    out = _two_ranks([good, on_rank1], {**kwargs, "output": str(tmp_path / "two")})
    for rank in (0, 1):
        rows, failures = out[rank]
        assert [f["name"] for f in failures] == ["s2"] and failures[0]["stage"] == "load"
        assert failures[0]["error"].startswith("ModelError" if rank == 1 else "rank 1 of 2: ModelError")
        want = [r for r in reference.rows if r["name"] != "s2"]
        assert [r["name"] for r in rows] == ["s0", "s3"]
        for got, ref in zip(rows, want):
            assert got["sweep_units/acc"] == ref["sweep_units/acc"] and got["N"] == ref["N"]
    assert pd.read_csv(tmp_path / "two" / "runs.csv")["name"].tolist() == ["s0", "s3"]


def test_an_error_on_one_rank_alone_stops_a_distributed_sweep(suite, tmp_path):
    """Rank 0 alone cannot write s2's output: the other rank is already inside s2's collectives, so the sweep
    stops with that error (instead of rank 0 moving on and pairing mismatched collectives until the timeout);
    the checkpoints before it are in runs.csv for --resume."""
    import torch.multiprocessing as mp

    ckpts = suite["ckpts"]
    listing = [Checkpoint(n, str(ckpts / n)) for n in ("s0", "s2", "s3")]
    out_dir = tmp_path / "two"
    out_dir.mkdir()
    (out_dir / "s2").write_text("a file where s2's run folder goes")
    kwargs = {**_units_task(tmp_path / "tasks"), "metadata": suite["meta"], "output": str(out_dir)}
    with pytest.raises(mp.ProcessRaisedException, match=r"s2 is not writable"):
        _two_ranks([listing, listing], kwargs)
    assert pd.read_csv(out_dir / "runs.csv")["name"].tolist() == ["s0"]


@pytest.mark.parametrize("value, problem", [("abc", "is not a number"), ("0", "positive, finite"),
                                            ("-5", "positive, finite"), ("inf", "positive, finite")])
def test_a_bad_token_count_in_the_metadata_names_file_row_and_column(suite, tmp_path, value, problem):
    meta = tmp_path / "meta.csv"
    meta.write_text(f"name,D\ns0,{value}\n")
    with pytest.raises(SweepError, match=rf"meta.csv: row 's0', column D: .*{problem}"):
        run_sweep([Checkpoint("s0", str(suite["ckpts"] / "s0"))], ["sweep_story"], output=tmp_path / "o",
                  metadata=meta, include_path=[suite["tasks"]], progress=False)
    assert not (tmp_path / "o").exists()


def test_a_metadata_n_is_used_and_recorded_next_to_the_counted_one(suite, tmp_path, caplog):
    meta = tmp_path / "meta.csv"
    meta.write_text("name,D,N\ns0,1e5,999\ns2,2e5,\n")            # s2: no N given → counted
    listing = [Checkpoint(n, str(suite["ckpts"] / n)) for n in ("s0", "s2")]
    with caplog.at_level("WARNING", logger="slmeval.sweep"):
        report = run_sweep(listing, output=tmp_path / "o", metadata=meta, **_units_task(tmp_path / "tasks"))
    table = pd.read_csv(tmp_path / "o" / "runs.csv")
    counted = [_reference_n(suite["ckpts"] / n) for n in ("s0", "s2")]
    assert table["N"].tolist() == [999, counted[1]] and len(report.rows) == 2
    assert table["N_source"].tolist() == [f"metadata {meta} (counted from the model: {counted[0]})",
                                          "counted from the model"]
    assert f"s0: N = 999 from {meta}, but the model has {counted[0]:,} non-embedding parameters" in caplog.text
