"""`slmeval synth` with espeak-ng end to end: layout, manifest, resume, shards, sBLIMP, the ms_ tasks
read back and scored, and the speaker-gap analysis."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from slmeval.audio import load_audio
from slmeval.cli import app
from slmeval.data import read_sblimp, read_storycloze
from slmeval.synth.speaker_gap import gap_for_run, speaker_gap
from slmeval.synth import build_plan, read_manifest, run_synth
from slmeval.tts.base import EspeakBackend, TTSError
from slmeval.tts.espeak import synthesize

from tests._synth_helpers import MINIMAL_PAIRS, STORIES, write_jsonl

VOICES = ["en-us", "en-gb+f3"]


def _synth_cli(*args: str) -> None:
    result = CliRunner().invoke(app, ["synth", *args, "--no-progress"])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """<root>/ms_sStoryCloze (2 voices) and <root>/sStoryCloze (one voice, flat), built through the CLI."""
    root = tmp_path_factory.mktemp("synth_data")
    source = write_jsonl(root / "stories.jsonl", STORIES)
    _synth_cli("--source", str(source), "--task", "sstorycloze", "--tts", "espeak", "--voices", ",".join(VOICES),
               "--out", str(root / "ms_sStoryCloze"))
    _synth_cli("--source", str(source), "--task", "sstorycloze", "--tts", "espeak", "--voices", "en-us", "--flat",
               "--out", str(root / "sStoryCloze"))
    return root


def test_multispeaker_layout_manifest_and_reader(data_root):
    out = data_root / "ms_sStoryCloze"
    entries = read_manifest(out)
    assert len(entries) == 2 * 2 * len(STORIES)
    story = {s["id"]: s for s in STORIES}
    for file, e in entries.items():
        info = sf.info(str(out / file))
        assert (info.samplerate, info.channels, info.frames) == (16_000, 1, e["frames"]) and e["frames"] > 0
        assert math.isclose(e["duration"], e["frames"] / 16_000, abs_tol=1e-4)
        ending = story[e["item"]]["positive" if e["role"] == "correct" else "negative"]
        assert e["text"] == f"{story[e['item']]['context']} {ending}"
        assert file.startswith(e["voice"] + "/") and e["backend"] == "espeak" and e["call_seed"] is None
    pairs = read_storycloze(out)
    assert len(pairs) == 2 * len(STORIES)
    assert {p.meta["speaker"] for p in pairs} == set(VOICES)
    assert {p.meta["story"] for p in pairs} == set(story)
    pair = next(p for p in pairs if p.meta == {"story": "s2", "speaker": "en-gb+f3"})
    assert entries[f"en-gb+f3/{pair.positive.key}.wav"]["text"].endswith(story["s2"]["positive"])
    assert entries[f"en-gb+f3/{pair.negative.key}.wav"]["text"].endswith(story["s2"]["negative"])
    assert len(read_storycloze(data_root / "sStoryCloze")) == len(STORIES)


def test_audio_is_what_espeak_says(data_root):
    """Independent path: the file equals espeak-ng called directly (up to 16-bit PCM rounding)."""
    entry = read_manifest(data_root / "ms_sStoryCloze")["en-gb+f3/3_s2_incorrect.wav"]
    direct = synthesize(entry["text"], "en-gb+f3")
    written = load_audio(data_root / "ms_sStoryCloze" / entry["file"])
    assert len(written) == len(direct)
    np.testing.assert_allclose(written, np.clip(direct, -1, 1), atol=1 / 32768 + 1e-6)


def test_resume_skips_valid_files_and_redoes_broken_or_changed_ones(tmp_path):
    plan = build_plan(write_jsonl(tmp_path / "s.jsonl", STORIES[:1]), "sstorycloze", VOICES)
    out = tmp_path / "out"
    backend = EspeakBackend(workers=2)
    assert run_synth(plan, backend, out, progress=False).written == 4
    mtimes = {f: (out / f).stat().st_mtime_ns for f in read_manifest(out)}
    assert run_synth(plan, backend, out, progress=False).written == 0
    assert run_synth(plan, backend, out, seed=9, progress=False).written == 0     # espeak ignores the seed
    assert {f: (out / f).stat().st_mtime_ns for f in mtimes} == mtimes
    (out / "en-us/0_s1_correct.wav").write_bytes(b"RIFF garbage")          # unreadable → regenerated
    (out / "en-gb+f3/1_s1_incorrect.wav").unlink()                         # missing → regenerated
    report = run_synth(plan, backend, out, progress=False)
    assert (report.written, report.skipped, report.complete) == (2, 2, True)
    assert sf.info(str(out / "en-us/0_s1_correct.wav")).frames > 0
    # A half-written manifest line (killed run) is reported and its file redone, nothing else.
    manifest = out / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    victim = json.loads(lines[0])["file"]
    manifest.write_text("\n".join(lines[1:]) + "\n" + lines[0][: len(lines[0]) // 2])
    assert run_synth(plan, backend, out, progress=False).written == 1 and victim in read_manifest(out)
    # Changed options (speed) are a different request: all files are redone.
    assert run_synth(plan, EspeakBackend(speed=200, workers=2), out, progress=False).written == 4
    assert len(read_manifest(out)) == 4 and len((out / "manifest.jsonl").read_text().splitlines()) == 4


def test_shards_together_equal_the_unsharded_run(data_root, tmp_path):
    source = data_root / "stories.jsonl"
    out = tmp_path / "sharded"
    common = ["--source", str(source), "--task", "sstorycloze", "--tts", "espeak", "--voices", ",".join(VOICES),
              "--out", str(out)]
    _synth_cli(*common, "--shard", "1/2")
    assert (out / "manifest.1-of-2.jsonl").is_file() and not (out / "manifest.jsonl").exists()
    _synth_cli(*common, "--shard", "0/2")
    merged = read_manifest(out)
    assert (out / "manifest.jsonl").is_file()     # the last shard to finish merged the parts
    from_file = {json.loads(line)["file"] for line in (out / "manifest.jsonl").read_text().splitlines()}
    reference = read_manifest(data_root / "ms_sStoryCloze")
    assert from_file == set(merged) == set(reference)
    for file in reference:   # espeak is deterministic: identical bytes
        assert (out / file).read_bytes() == (data_root / "ms_sStoryCloze" / file).read_bytes()


def test_sblimp_layout_reads_back(tmp_path):
    out = tmp_path / "sblimp_out"
    _synth_cli("--source", str(write_jsonl(tmp_path / "mp.jsonl", MINIMAL_PAIRS)), "--task", "sblimp",
               "--tts", "espeak", "--voices", ",".join(VOICES), "--out", str(out))
    pairs = read_sblimp(out, split="dev")
    assert len(pairs) == len(MINIMAL_PAIRS) * len(VOICES)
    entries = read_manifest(out)
    for p in pairs:
        good = entries[f"syntactic/dev/{p.positive.key}.wav"]
        bad = entries[f"syntactic/dev/{p.negative.key}.wav"]
        assert (good["role"], bad["role"]) == ("good", "bad") and good["voice"] == bad["voice"]
        src = next(m for m in MINIMAL_PAIRS if f"{m['type']}/{m['subtype']}/{m['id']}" == good["item"])
        assert (good["text"], bad["text"]) == (src["good"], src["bad"])


def test_bad_inputs_fail_with_one_clear_error(tmp_path):
    source = write_jsonl(tmp_path / "s.jsonl", STORIES[:1])
    with pytest.raises(TTSError, match="espeak voice 'xx-nope'"):
        run_synth(build_plan(source, "sstorycloze", ["xx-nope"]), EspeakBackend(), tmp_path / "o", progress=False)
    result = CliRunner().invoke(app, ["synth", "--source", str(source), "--task", "sstorycloze", "--tts", "bark",
                                      "--voices", "v2/en_speaker_0", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--model DIR" in result.output


@pytest.mark.slow
def test_ms_task_scored_end_to_end_and_speaker_gap(data_root, tiny_llama_dir, tmp_path):
    """Synthesised folders → registry tasks → logmel units → tiny Llama → results → speaker-gap."""
    from slmeval.evaluator import evaluate
    from tests.conftest import N_UNITS

    centroids = tmp_path / "centroids.npy"
    np.save(centroids, np.random.default_rng(0).normal(size=(N_UNITS, 20)).astype(np.float32))
    out = tmp_path / "run"
    results = evaluate(tiny_llama_dir, ["ms_sstorycloze", "sstorycloze"], data_root=data_root,
                       tokenizer=f"logmel:centroids={centroids},n_mels=20", output=out, use_cache=False,
                       progress=False)
    ms = results["results"]["ms_sstorycloze"]
    assert ms["n_pairs"] == 2 * len(STORIES) and ms["n_voices"] == 2
    samples = [json.loads(line) for line in (out / "samples_ms_sstorycloze.jsonl").read_text().splitlines()]
    single = [json.loads(line) for line in (out / "samples_sstorycloze.jsonl").read_text().splitlines()]
    row = gap_for_run(out)
    for voice in VOICES:
        expected = np.mean([s["correct"] for s in samples if s["meta"]["speaker"] == voice])
        assert row.voices[voice] == pytest.approx(expected)
    # Every story has every voice, so the story-paired gap is exactly multi acc - single acc.
    multi_acc = np.mean([s["correct"] for s in samples])
    single_acc = np.mean([s["correct"] for s in single])
    assert row.gap == pytest.approx(multi_acc - single_acc) and row.n_stories == len(STORIES)
    assert row.multi_mean == pytest.approx(multi_acc)
    shown = CliRunner().invoke(app, ["speaker-gap", str(tmp_path), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)[0]["gap"] == pytest.approx(row.gap)


def _write_run(folder, single_correct, multi_correct):
    """A results folder by hand: samples files + the results.json fields speaker-gap reads."""
    folder.mkdir(parents=True)
    single = [{"id": s, "positive_key": f"{2 * i}_{s}_correct", "correct": c, "meta": {"story": s, "speaker": None}}
              for i, (s, c) in enumerate(single_correct.items())]
    multi = [{"id": f"{v}/{s}", "positive_key": f"{2 * i}_{s}_correct", "correct": c,
              "meta": {"story": s, "speaker": v}}
             for v, per_story in multi_correct.items() for i, (s, c) in enumerate(per_story.items())]
    for name, rows in (("sstorycloze", single), ("ms_sstorycloze", multi)):
        (folder / f"samples_{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    voices = {v: {"acc": float(np.mean(list(c.values()))), "n_pairs": len(c)} for v, c in multi_correct.items()}
    results = {"results": {"sstorycloze": {"acc": float(np.mean(list(single_correct.values()))), "n_pairs": len(single)},
                           "ms_sstorycloze": {"acc": float(np.mean([r["correct"] for r in multi])),
                                              "n_pairs": len(multi)}},
               "breakdowns": {"ms_sstorycloze": {"speaker": voices}}, "config": {"model": "/models/m1"}}
    (folder / "results.json").write_text(json.dumps(results))


def test_speaker_gap_hand_checked(tmp_path):
    _write_run(tmp_path / "m1", {"s1": 1.0, "s2": 0.0, "s3": 1.0, "s4": 1.0},
               {"A": {"s1": 1.0, "s2": 1.0, "s3": 0.0, "s4": 1.0}, "B": {"s1": 0.0, "s2": 1.0, "s3": 0.0, "s4": 1.0}})
    (row,) = speaker_gap(tmp_path)
    # By hand: single 3/4; voices A 3/4, B 2/4 → mean 0.625, std(ddof=1) = 0.25/sqrt(2);
    # per-story d = (-0.5, 1, -1, 0) → gap -0.125, sd(d) = sqrt(2.1875/3), CI half = 1.96 * sd / 2.
    assert (row.single_acc, row.multi_mean, row.voices) == (0.75, 0.625, {"A": 0.75, "B": 0.5})
    assert row.voice_std == pytest.approx(0.1767767) and (row.voice_min, row.voice_max) == (0.5, 0.75)
    assert row.gap == pytest.approx(-0.125)
    assert (row.ci_low, row.ci_high) == (pytest.approx(-0.961818, abs=1e-5), pytest.approx(0.711818, abs=1e-5))
    assert (row.n_stories, row.single_only, row.multi_only, row.ci_method) == (4, 0, 0, "paired")
    # Without samples files: the unpaired fallback is flagged.
    for f in (tmp_path / "m1").glob("samples_*"):
        f.unlink()
    assert gap_for_run(tmp_path / "m1").ci_method == "unpaired"
    shutil.rmtree(tmp_path / "m1")
