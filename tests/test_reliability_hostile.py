"""Hostile input, round 3 (issue 19, points 3-8): empty task lists, output folders holding another run,
unit mappings onto special tokens, absurd audio, runs tables a fit cannot honour, output paths and
devices that would have ended in a traceback, errors that did not say what was wrong. Each case is one
clear error (exit 2, no traceback, the file / option named) or a correct result. docs/reliability.md
points at each test here."""
from __future__ import annotations

import hashlib
import json
import math
import resource
import shutil
import struct
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _data_helpers import make_storycloze, make_units_jsonl  # noqa: E402
from _leaderboard_helpers import correctness, write_run  # noqa: E402
from _scaling_helpers import SPEECH, law_loss, single_epoch_runs  # noqa: E402
from conftest import N_UNITS  # noqa: E402

from slmeval.audio import MAX_PEAK, MAX_SR, MIN_SR, AudioError, load_audio
from slmeval.cli import app
from slmeval.io import OutputError, write_files_together
from slmeval.scaling.chinchilla import unidentifiable
from slmeval.scaling.study import FitOptions
from slmeval.units import UnitCache, fit_logmel_kmeans

TASKS = """
- {name: h_a, family: pairs, source: units_jsonl, path: a.jsonl}
- {name: h_b, family: pairs, source: units_jsonl, path: b.jsonl}
- {name: h_story, family: pairs, source: storycloze, path: story}
"""


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_units_jsonl(root / "a.jsonl", n_pairs=5, n_units=N_UNITS)
    make_units_jsonl(root / "b.jsonl", n_pairs=4, n_units=N_UNITS, seed=2)
    make_storycloze(root / "story")
    tasks = tmp_path_factory.mktemp("tasks")
    (tasks / "h.yaml").write_text(TASKS)
    return {"root": root, "tasks": tasks}


def run(world, *args: str, env: dict | None = None):
    return CliRunner().invoke(app, ["run", *args, "--data-root", str(world["root"]), "--include-path",
                                    str(world["tasks"]), "--no-progress", "--no-cache"], env=env)


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def one_error(result, code: int = 2) -> str:
    """The output of a command that must have failed cleanly: exit `code`, one error line, no traceback."""
    text = squash(result.output)
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and text.count("error:") == 1, result.output
    return text


# ------------------------------------------------------------------ §3 no empty or destructive runs

@pytest.mark.parametrize("tasks", [",", ",,", " , "])
def test_an_empty_task_list_is_an_error_before_the_model_loads(world, tiny_llama_dir, tmp_path, tasks):
    out = tmp_path / "out"
    assert run(world, "--model", str(tiny_llama_dir), "--tasks", "h_a", "--output", str(out)).exit_code == 0
    before = tree(out)
    # A model path that does not exist: had the model been loaded first, its error would be the one shown.
    text = one_error(run(world, "--model", str(tmp_path / "no-model"), "--tasks", tasks, "--output", str(out)))
    assert "--tasks names no task" in text
    assert tree(out) == before                                  # the earlier run is untouched
    fresh = tmp_path / "fresh"
    one_error(run(world, "--model", str(tiny_llama_dir), "--tasks", tasks, "--output", str(fresh)))
    assert not fresh.exists()                                   # nothing created, nothing empty written


def test_a_sweep_with_an_empty_task_list_stops_before_any_checkpoint_loads(world, tiny_llama_dir, tmp_path):
    res = CliRunner().invoke(app, ["sweep", "--models", str(tiny_llama_dir), "--tasks", ",", "--include-path",
                                   str(world["tasks"]), "--output", str(tmp_path / "o"), "--no-progress"])
    assert "--tasks names no task" in one_error(res) and not (tmp_path / "o").exists()


def test_a_run_into_a_folder_holding_another_run_replaces_it_whole(world, tiny_llama_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert run(world, "--model", str(tiny_llama_dir), "--tasks", "h_a,h_b", "--output", str(out)).exit_code == 0
    assert {p.name for p in out.glob("samples_*")} == {"samples_h_a.jsonl", "samples_h_b.jsonl"}
    keep = {"notes.txt": "mine\n", "samples_h_b_2024-01-01.jsonl": "lm-eval's own file\n"}   # not the run's files
    for name, text in keep.items():
        (out / name).write_text(text)
    assert run(world, "--model", str(tiny_llama_dir), "--tasks", "h_a", "--output", str(out)).exit_code == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["results"]) == {"h_a"}
    # the old h_b samples went with the old results.json; what the user keeps there stays
    assert sorted(p.name for p in out.glob("samples_*.jsonl")) == ["samples_h_a.jsonl", "samples_h_b_2024-01-01.jsonl"]
    assert all((out / name).read_text() == text for name, text in keep.items())
    lines = (out / "samples_h_a.jsonl").read_text().splitlines()
    assert len(lines) == results["n_samples"]["h_a"] == 5
    # the same task again, the folder named relatively (the old index names `out/…`, the writer resolves)
    monkeypatch.chdir(tmp_path)
    assert run(world, "--model", str(tiny_llama_dir), "--tasks", "h_a", "--output", "out").exit_code == 0
    assert (out / "samples_h_a.jsonl").read_text().splitlines() == lines


def test_a_commit_killed_midway_never_leaves_an_index_beside_other_files(tmp_path, monkeypatch):
    """Kill the commit at each of its steps (renames and unlinks): the folder then holds the old set, no
    index, or the new set — never the old results.json beside new samples, nor the reverse."""
    import os

    old = {"samples_a.jsonl": "old a\n", "samples_b.jsonl": "old b\n", "results.json": '{"results": {"a": 1, "b": 1}}\n'}
    new = {"samples_a.jsonl": "new a\n", "results.json": '{"results": {"a": 2}}\n'}
    real_replace, real_unlink = os.replace, Path.unlink
    for step in range(4):       # 0: withdraw old index, 1: rename samples_a, 2: drop samples_b, 3: rename index
        out = tmp_path / f"k{step}"
        out.mkdir()
        for name, text in old.items():
            (out / name).write_text(text)
        calls = {"n": 0}

        def counted(real):
            def wrapper(*args, **kwargs):
                target = Path(args[-1] if real is real_replace else args[0])
                if not target.name.endswith(".tmp"):      # the commit's own steps, not temp-file cleanup
                    if calls["n"] == step:
                        raise KeyboardInterrupt           # as a kill would stop it
                    calls["n"] += 1
                return real(*args, **kwargs)
            return wrapper

        monkeypatch.setattr(os, "replace", counted(real_replace))
        monkeypatch.setattr(Path, "unlink", counted(real_unlink))
        with pytest.raises(KeyboardInterrupt):
            write_files_together({out / k: v for k, v in new.items()}, replaces=[out / "samples_a.jsonl",
                                                                                out / "samples_b.jsonl"])
        monkeypatch.undo()
        state = {p.name: p.read_text() for p in out.iterdir() if not p.name.endswith(".tmp")}
        if "results.json" in state:
            index = json.loads(state["results.json"])["results"]
            samples = {n[8:-6]: t for n, t in state.items() if n.startswith("samples_")}
            assert set(samples) == set(index), (step, state)
            assert all(t.startswith("old" if index == {"a": 1, "b": 1} else "new") for t in samples.values())
        else:
            assert step in (1, 2, 3), state                   # only after the old index was withdrawn
    out = tmp_path / "whole"
    out.mkdir()
    for name, text in old.items():
        (out / name).write_text(text)
    write_files_together({out / k: v for k, v in new.items()}, replaces=[out / "samples_a.jsonl", out / "samples_b.jsonl"])
    assert {p.name: p.read_text() for p in out.iterdir()} == new


# ------------------------------------------------------------------ §4 unit mapping onto special ids

@pytest.fixture(scope="module")
def no_offset_model(tiny_llama_dir, tmp_path_factory) -> Path:
    """tiny_llama_dir (pad 0, BOS 1, EOS 2, vocab K + 3) with no `offset` in its config.json."""
    path = tmp_path_factory.mktemp("nooffset") / "m"
    shutil.copytree(tiny_llama_dir, path)
    cfg = json.loads((path / "config.json").read_text())
    cfg.pop("offset")
    (path / "config.json").write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize("offset,hits", [
    (0, ["bos_id=1 (unit 1)", "eos_id=2 (unit 2)", "pad_id=0 (unit 0)"]),   # tokens 0..15
    (2, ["eos_id=2 (unit 0)"]),                                               # tokens 2..17
])
def test_units_mapped_onto_special_tokens_need_force(world, no_offset_model, tmp_path, offset, hits):
    text = one_error(run(world, "--model", str(no_offset_model), "--model-args", f"offset={offset}",
                         "--tasks", "h_a", "--output", str(tmp_path / "o")))
    assert f"land on special token(s) {', '.join(hits)}" in text and "force=true" in text
    assert not (tmp_path / "o").exists()
    forced = run(world, "--model", str(no_offset_model), "--model-args", f"offset={offset},force=true",
                 "--tasks", "h_a", "--output", str(tmp_path / "f"))
    assert forced.exit_code == 0, forced.output
    sources = json.loads((tmp_path / "f" / "results.json").read_text())["config"]["unit_mapping"]["sources"]
    assert sources["units_on_specials"] == f"forced (force=true): {', '.join(hits)} are unit tokens"
    # offset 3 puts units 0..15 on tokens 3..18: clear of every special, no force needed
    assert run(world, "--model", str(no_offset_model), "--model-args", "offset=3", "--tasks", "h_a").exit_code == 0


def test_loss_on_units_mapped_onto_special_tokens_needs_force(no_offset_model, tmp_path):
    data = tmp_path / "held.jsonl"
    data.write_text("".join(json.dumps({"units": list(range(i, i + 8))}) + "\n" for i in range(4)))   # units 0..10
    args = ["loss", "--model", str(no_offset_model), "--data", str(data)]
    text = one_error(CliRunner().invoke(app, [*args, "--model-args", "offset=2"]))
    assert "the held-out data's units 0..10 land on special token(s) eos_id=2 (unit 0)" in text
    assert CliRunner().invoke(app, [*args, "--model-args", "offset=3"]).exit_code == 0


def test_the_tokenizers_k_decides_which_units_exist(no_offset_model):
    """With a tokenizer, all K units are checked (not only those in the data): K = 16 at offset 1 reaches
    EOS (token 2) with unit 1 and BOS with unit 0."""
    from slmeval.models import ModelError, load_lm

    with pytest.raises(ModelError, match=r"units 0..15 land on special token\(s\) bos_id=1 \(unit 0\), eos_id=2 \(unit 1\)"):
        load_lm(no_offset_model, model_args="offset=1", n_units=N_UNITS)
    assert load_lm(no_offset_model, model_args="offset=3", n_units=N_UNITS).mapping.sources.get("units_on_specials") is None


# ------------------------------------------------------------------ §5 absurd audio

def _wav_with_rate(path: Path, rate: int, n: int = 20_000) -> Path:
    """A valid 16-bit WAV whose header declares `rate` (the fmt chunk's sample and byte rates edited)."""
    sf.write(path, 0.1 * np.sin(np.arange(n) / 7.0), 16_000, subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    assert raw[12:16] == b"fmt " and struct.unpack_from("<I", raw, 24)[0] == 16_000
    struct.pack_into("<I", raw, 24, rate)
    struct.pack_into("<I", raw, 28, min(2 * rate, 2**32 - 1))
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("rate", [1, MIN_SR - 1, MAX_SR + 1, 2_000_000_000])
def test_a_declared_sample_rate_no_recording_has_is_refused_before_any_allocation(tmp_path, rate):
    path = _wav_with_rate(tmp_path / "x.wav", rate)
    tracemalloc.start()
    try:
        with pytest.raises(AudioError, match=rf"{path}: declared sample rate {rate} Hz is not one a recording has"):
            load_audio(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # decoding alone would take 20,000 x 4 bytes; resampling 1 Hz -> 16 kHz would take 1.3 GB
    assert peak < 60_000, peak


@pytest.mark.parametrize("rate", [MIN_SR, MAX_SR])
def test_the_sample_rate_edges_are_accepted(tmp_path, rate):
    wav = load_audio(_wav_with_rate(tmp_path / "x.wav", rate, n=4_000))
    assert len(wav) == math.ceil(4_000 * 16_000 / rate)        # resampled: n x 16 kHz / rate samples, rounded up


def test_finite_but_absurd_samples_are_one_error_naming_the_file(world, tiny_llama_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(world["root"], data)
    victim = sorted((data / "story").glob("*.wav"))[0]
    wav, sr = sf.read(victim, dtype="float32")
    sf.write(victim, wav * np.float32(1e30), sr, subtype="FLOAT")    # finite in float32, overflows log-mel
    tok = fit_logmel_kmeans(sorted((world["root"] / "story").glob("*.wav")), k=N_UNITS, out_dir=tmp_path / "tok",
                            progress=False)
    result = CliRunner().invoke(app, ["run", "--model", str(tiny_llama_dir), "--tasks", "h_story", "--tokenizer",
                                      str(tok), "--data-root", str(data), "--include-path", str(world["tasks"]),
                                      "--output", str(tmp_path / "out"), "--no-cache", "--no-progress"])
    text = one_error(result)
    assert f"{victim}: samples reach " in text and "beyond any recording's range" in text
    assert not (tmp_path / "out" / "results.json").exists()
    # the edge: a float file on int16's scale (peak exactly MAX_PEAK) is audio; one step above is not
    sf.write(tmp_path / "edge.wav", np.array([0.0, MAX_PEAK, -1.0], np.float32), 16_000, subtype="FLOAT")
    assert float(np.abs(load_audio(tmp_path / "edge.wav")).max()) == MAX_PEAK
    sf.write(tmp_path / "over.wav", np.array([0.0, np.nextafter(np.float32(MAX_PEAK), np.float32(1e9))],
                                             np.float32), 16_000, subtype="FLOAT")
    with pytest.raises(AudioError, match="over.wav: samples reach"):
        load_audio(tmp_path / "over.wav")


# ------------------------------------------------------------------ §6 fit never reports what it could not fit

def _table(path: Path, df: pd.DataFrame) -> Path:
    df.to_csv(path, index=False)
    return path


def _runs(n_runs: int = 12) -> pd.DataFrame:
    df = single_epoch_runs(SPEECH, n_runs, seed=0)
    return df.assign(name=[f"r{i}" for i in range(n_runs)], acc=np.linspace(0.5, 0.7, n_runs))


def test_a_text_cell_in_a_metric_column_is_an_error_naming_row_and_column(tmp_path):
    df = _runs().astype({"acc": object})
    df.loc[3, "acc"] = "0.61 (seed 2)"
    res = CliRunner().invoke(app, ["fit", str(_table(tmp_path / "runs.csv", df)), "--out", str(tmp_path / "fit"),
                                   "--bootstrap", "0", "--no-plots"])
    text = one_error(res)
    assert "column 'acc' must be numeric; not a number in row 4 (run 'r3'): '0.61 (seed 2)'" in text
    assert not (tmp_path / "fit").exists()
    # a column with no number in it is a description, not a metric: kept out of the fit, no error
    ok = _runs().assign(tokenizer="hubert-25hz")
    res = CliRunner().invoke(app, ["fit", str(_table(tmp_path / "ok.csv", ok)), "--out", str(tmp_path / "fit2"),
                                   "--bootstrap", "0", "--no-plots"])
    assert res.exit_code == 0, res.output
    assert list(json.loads((tmp_path / "fit2" / "fit.json").read_text())["gamma_q"]) == ["acc | speech"]


def test_a_fit_into_a_folder_holding_another_fit_leaves_none_of_its_figures(tmp_path):
    df = _runs().assign(other=np.linspace(0.4, 0.9, 12)).drop(columns="loss")     # metrics only: a quick fit
    table, out = _table(tmp_path / "runs.csv", df), tmp_path / "fit"
    args = ["fit", str(table), "--out", str(out), "--bootstrap", "0"]
    assert CliRunner().invoke(app, args).exit_code == 0
    first = json.loads((out / "fit.json").read_text())["figures"]
    assert any("other" in f for f in first)
    (out / "mine.png").write_bytes(b"not a fit figure")              # not listed by fit.json: kept
    res = CliRunner().invoke(app, [*args, "--metric", "acc", "--no-plots"])    # this fit draws no figure
    assert res.exit_code == 0, res.output
    assert json.loads((out / "fit.json").read_text())["figures"] == []
    assert sorted(p.name for p in out.iterdir()) == ["fit.json", "mine.png", "report.md"]


def test_parameters_the_runs_cannot_identify_are_never_reported(tmp_path):
    df = _runs()
    df["N"] = 1e8                                               # one model size: A/N^α is a constant beside E
    df["loss"] = law_loss(SPEECH, df["N"], df["D"])
    res = CliRunner().invoke(app, ["fit", str(_table(tmp_path / "runs.csv", df)), "--out", str(tmp_path / "fit"),
                                   "--bootstrap", "0", "--no-plots"])
    assert res.exit_code == 0, res.output
    fit = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert fit["loss_law"] == {} and fit["allocation"] == {}
    reason = [s["reason"] for s in fit["skipped"] if s["analysis"] == "loss_law"]
    assert reason == ["every single-epoch run has the same N: the law's A, α cannot be told from E (need >= 2 "
                      "distinct values of N)"]
    assert "## Loss law" not in (tmp_path / "fit" / "report.md").read_text()


def test_identifiability_follows_the_jacobian_rank():
    """Hand-known cases: varied N and D identify all five; one N confounds E, A, α; one D confounds E, B, β;
    a term ~1e-31 of the loss leaves its coefficient and exponent free; α = 0 makes A a second E."""
    df = single_epoch_runs(SPEECH, 12, seed=0)
    n, d = df["N"].to_numpy(), df["D"].to_numpy()
    assert unidentifiable(n, d, SPEECH) == []
    assert unidentifiable(np.full(12, 1e8), d, SPEECH) == ["E", "A", "alpha"]
    assert unidentifiable(n, np.full(12, 1e10), SPEECH) == ["E", "B", "beta"]
    assert unidentifiable(n, d, {**SPEECH, "A": 1e-30}) == ["A", "alpha"]
    assert unidentifiable(n, d, {**SPEECH, "alpha": 0.0}) == ["E", "A"]


def test_overflowing_compute_is_an_error_not_a_traceback(tmp_path):
    df = _runs().assign(N=1e308, D=1e308)
    res = CliRunner().invoke(app, ["fit", str(_table(tmp_path / "runs.csv", df)), "--out", str(tmp_path / "fit"),
                                   "--bootstrap", "0", "--no-plots"])
    assert "compute C = 6·N·D is beyond float64 (> 1.8e308) for runs ['r0'," in one_error(res)


@pytest.mark.parametrize("option,value,message", [
    ("--ci", "1.5", "--ci 1.5: a confidence level is between 0 and 1"),
    ("--ci", "1", "--ci 1: a confidence level"), ("--ci", "0", "--ci 0: a confidence level"),
    ("--delta", "-1", "--delta -1: the Huber threshold must be a finite number > 0"),
    ("--bootstrap", "-3", "--bootstrap -3: a number of replicates"),
    ("--saturation", "bogus", "--saturation 'bogus': expected one of hinge, none, max-loss"),
    ("--target", "nan", "--target nan: a metric value to reach must be a finite number > 0"),
    ("--metric", "name", "--metric 'name': not a metric column of the runs table (a run descriptor)"),
])
def test_fit_options_out_of_range_name_the_option(tmp_path, option, value, message):
    quick = ["--bootstrap", "0"] if option != "--bootstrap" else []
    res = CliRunner().invoke(app, ["fit", str(_table(tmp_path / "runs.csv", _runs())), "--out", str(tmp_path / "fit"),
                                   "--no-plots", *quick, option, value])
    assert message in one_error(res)
    assert FitOptions(ci=0.5).ci == 0.5                         # inside the edges: accepted


# ------------------------------------------------------------------ §7 no tracebacks: paths and devices

@pytest.fixture(scope="module")
def a_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    write_run(out, {"mini_sblimp": correctness(40, 0.7, seed=1)})
    return out


def _paths_cases(tmp: Path, a_run: Path, world) -> list[tuple[list[str], dict, str, Path]]:
    a_file, a_dir = tmp / "a_file", tmp / "a_dir"
    a_file.write_text("keep me\n")
    a_dir.mkdir()
    (a_dir / "inside").write_text("keep me too\n")
    runs = _table(tmp / "runs.csv", _runs())
    csv = tmp / "stories.csv"
    csv.write_text("InputStoryid,InputSentence1,InputSentence2,InputSentence3,InputSentence4,"
                   "RandomFifthSentenceQuiz1,RandomFifthSentenceQuiz2,AnswerRightEnding\ns1,a,b,c,d,e,f,1\ns2,a,b,c,d,e,f,2\n")
    board = Path(__file__).parents[1] / "leaderboard"
    return [
        (["fit", str(runs), "--out", str(a_file), "--bootstrap", "0"], {}, "--out", a_file),
        (["leaderboard", "build", "--out", str(a_file), "--board", str(board)], {}, "--out", a_file),
        (["check", "--results", str(a_run), "--baseline", str(a_run), "--output", str(a_dir)], {}, "--output", a_dir),
        (["check", "--results", str(a_run), "--baseline", str(a_run), "--format", "github"],
         {"GITHUB_STEP_SUMMARY": str(a_dir)}, "GITHUB_STEP_SUMMARY", a_dir),
        (["units", "fit-kmeans", str(world["root"] / "story"), "--k", "2", "--out", str(a_file)], {}, "--out", a_file),
        (["units", "convert-kmeans", str(a_file), "--out", str(a_dir), "--allow-pickle"], {}, "--out", a_dir),
        (["loss", "--model", "unused", "--data", str(world["root"] / "a.jsonl"), "--output", str(a_dir)], {},
         "--output", a_dir),
        (["text-prepare", "storycloze", "--source", str(csv), "--data-root", str(a_file)], {}, "--data-root", a_file),
        (["fit", str(runs), "--out", str(a_file / "sub"), "--bootstrap", "0"], {}, "--out", a_file / "sub"),
        (["synth", "--source", str(csv), "--task", "sstorycloze", "--voices", "en-us", "--out", str(a_file)], {},
         "--out", a_file),
        (["sweep", "--models", str(a_dir), "--tasks", "h_a", "--output", str(a_file)], {}, "--output", a_file),
    ]


def test_output_paths_that_cannot_be_written_are_one_error_naming_them(tmp_path, a_run, world):
    for args, env, option, path in _paths_cases(tmp_path, a_run, world):
        before = tree(tmp_path)
        res = CliRunner().invoke(app, args, env={"GITHUB_STEP_SUMMARY": "", **env})
        text = one_error(res)
        assert f"{option} {path}" in text, (args, text)
        assert tree(tmp_path) == before, args                   # nothing written anywhere, nothing replaced


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without a usable GPU")
@pytest.mark.parametrize("device,message", [
    ("cuda", "--device 'cuda': this torch build has no CUDA support" if torch.version.cuda is None
     else "--device 'cuda': no cuda device is visible"),
    ("bogus", "--device 'bogus': not a torch device"),
])
def test_a_device_this_torch_cannot_use_is_an_error_before_any_work(world, tiny_llama_dir, tmp_path, device, message):
    text = one_error(run(world, "--model", str(tiny_llama_dir), "--tasks", "h_a", "--device", device,
                         "--output", str(tmp_path / "o")))
    assert message in text and not (tmp_path / "o").exists()
    res = CliRunner().invoke(app, ["units", "encode", str(next((world["root"] / "story").glob("*.wav"))),
                                   "--tokenizer", "logmel:centroids=none.npy", "--device", device])
    assert message in one_error(res)


# ------------------------------------------------------------------ §8 errors that say what was wrong

def test_a_full_disk_while_the_cache_writes_its_identity_names_the_entry(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16, hard))          # identity.json is longer: EFBIG, root included
    try:
        with pytest.raises(OutputError, match=r"cannot write unit cache entry .*/identity\.json: File too large "
                                              r"\(use --cache-dir elsewhere or --no-cache\)"):
            UnitCache(tmp_path / "cache", {"kind": "test", "padding": "x" * 64})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize("content", ["a,b,c\n", "a,b,c\n1,2,3\n"])
def test_text_prepare_names_the_storycloze_columns(tmp_path, content):
    src = tmp_path / "x.csv"
    src.write_text(content)
    res = CliRunner().invoke(app, ["text-prepare", "storycloze", "--source", str(src), "--data-root", str(tmp_path / "d")])
    text = one_error(res)
    assert "expected the release columns ['InputStoryid', 'InputSentence1'" in text and "found ['a', 'b', 'c']" in text
    (tmp_path / "x.json").write_text('{"a": 1}')
    res = CliRunner().invoke(app, ["text-prepare", "storycloze", "--source", str(tmp_path / "x.json"), "--data-root",
                                   str(tmp_path / "d")])
    assert "expected a JSON list of story objects" in one_error(res)


def test_model_args_max_length_must_be_a_length(world, tiny_llama_dir):
    for value in ("abc", "0", "1"):
        text = one_error(run(world, "--model", str(tiny_llama_dir), "--model-args", f"max_length={value}", "--tasks", "h_a"))
        assert f"--model-args max_length='{value}': expected an integer >= 2" in text


@pytest.mark.parametrize("option,value,message", [
    ("--max-drop", "nan", "--max-drop must be a finite number >= 0 (accuracy points), got nan"),
    ("--max-drop", "inf", "--max-drop must be a finite number >= 0 (accuracy points), got inf"),
    ("--alpha", "1", "--alpha must lie strictly between 0 and 1, got 1.0"),
])
def test_check_options_out_of_range_name_the_option(a_run, option, value, message):
    """A NaN tolerance compared False with every drop: the gate passed whatever the new run did."""
    res = CliRunner().invoke(app, ["check", "--results", str(a_run), "--baseline", str(a_run), option, value])
    assert message in one_error(res)
