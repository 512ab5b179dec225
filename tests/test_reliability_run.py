"""`slmeval run` under change and hostile input: resume keyed on the data, names that are paths,
unwritable or full output folders, write failures mid-run, suspicious audio, umask, two processes
sharing one unit cache. docs/reliability.md points at each test here."""
from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import slmeval
import slmeval.evaluator
from _data_helpers import make_storycloze, make_units_jsonl, speech
from _units_helpers import CountingTokenizer
from conftest import N_UNITS
from slmeval.audio import level_dbfs, write_audio
from slmeval.cli import app
from slmeval.io import OutputError, write_files_together
from slmeval.results.resume import PartialFileError, PartialStore
from slmeval.units import UnitCache, fit_logmel_kmeans, load_tokenizer

TASKS = """
- {name: r_story, family: pairs, source: storycloze, path: story}
- {name: r_units, family: pairs, source: units_jsonl, path: units.jsonl}
- {name: r_big, family: pairs, source: units_jsonl, path: big.jsonl}
"""
SLMEVAL = [sys.executable, "-c", "from slmeval.cli import main; main()"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Task data (3 spoken stories, 5 and 300 unit pairs), task files and a log-mel tokenizer."""
    root = tmp_path_factory.mktemp("data")
    make_storycloze(root / "story")
    make_units_jsonl(root / "units.jsonl", n_pairs=5, n_units=N_UNITS)
    make_units_jsonl(root / "big.jsonl", n_pairs=300, n_units=N_UNITS, seed=1)
    tasks = tmp_path_factory.mktemp("tasks")
    (tasks / "r.yaml").write_text(TASKS)
    tok = fit_logmel_kmeans(sorted((root / "story").glob("*.wav")), k=N_UNITS,
                            out_dir=tmp_path_factory.mktemp("tok"), progress=False)
    return {"root": root, "tasks": tasks, "tok": str(tok)}


def _copy_data(world, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(world["root"], data)
    return data


def _kwargs(world, data: Path, out: Path | None, cache: Path, **extra) -> dict:
    return dict(data_root=data, tokenizer=world["tok"], cache_dir=cache, output=out,
                include_path=[world["tasks"]], progress=False, **extra)


def _interrupt_after(monkeypatch, finished: str) -> None:
    """The next evaluate() dies on the task after `finished` (as a killed job would)."""
    real = slmeval.evaluator.run_task
    state = {"done": False}

    def run_task(cfg, *a, **k):
        if state["done"]:
            raise KeyboardInterrupt
        result = real(cfg, *a, **k)
        state["done"] = cfg.name == finished
        return result

    monkeypatch.setattr("slmeval.evaluator.run_task", run_task)


def _interrupted_run(model, tasks: list[str], kwargs: dict, monkeypatch) -> None:
    """evaluate() killed after its first task: that task's partial result is saved, nothing else."""
    _interrupt_after(monkeypatch, tasks[0])
    with pytest.raises(KeyboardInterrupt):
        slmeval.evaluate(model, tasks, **kwargs)
    monkeypatch.undo()


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


# ----------------------------------------------------------------------------------------- §1 resume

def test_resume_recomputes_a_task_whose_audio_changed(world, tiny_llama_dir, tmp_path, monkeypatch):
    data, out = _copy_data(world, tmp_path), tmp_path / "out"
    kwargs = _kwargs(world, data, out, tmp_path / "cache")
    _interrupted_run(tiny_llama_dir, ["r_story", "r_units"], kwargs, monkeypatch)
    saved = json.loads((out / ".partial" / "r_story.json").read_text())["run"]
    old_credit = {s["id"]: s["correct"] for s in saved["samples"]}

    # Swap the two sides of one story: same file names, same items, different audio.
    pos, neg = data / "story" / "2_story_two_correct.wav", data / "story" / "3_story_two_incorrect.wav"
    a, b = pos.read_bytes(), neg.read_bytes()
    pos.write_bytes(b)
    neg.write_bytes(a)
    resumed = slmeval.evaluate(tiny_llama_dir, ["r_story", "r_units"], resume=True, **kwargs)
    fresh = slmeval.evaluate(tiny_llama_dir, ["r_story"], **_kwargs(world, data, None, tmp_path / "cache"))

    reason = resumed["provenance"]["resumed"]["r_story"]
    assert reason.startswith("recomputed: the audio changed"), reason
    new_hashes = resumed["provenance"]["task_hashes"]["r_story"]
    assert new_hashes["data_sha256"] != saved["hashes"]["data_sha256"]
    assert new_hashes["items_sha256"] == saved["hashes"]["items_sha256"]
    assert new_hashes == fresh["provenance"]["task_hashes"]["r_story"]
    assert resumed["results"]["r_story"] == fresh["results"]["r_story"]
    new_credit = {s["id"]: s["correct"] for s in map(json.loads, (out / "samples_r_story.jsonl").open())}
    assert new_credit["story_two"] == 1.0 - old_credit["story_two"]      # the swapped story flipped
    assert all(new_credit[i] == old_credit[i] for i in old_credit if i != "story_two")
    assert not (out / ".partial").exists()


def test_resume_recomputes_a_task_whose_item_metadata_changed(world, tiny_llama_dir, tmp_path, monkeypatch):
    """Same items and units, one item relabelled (metrics group by labels): the saved run is not reused."""
    data, out = _copy_data(world, tmp_path), tmp_path / "out"
    kwargs = _kwargs(world, data, out, tmp_path / "cache")
    _interrupted_run(tiny_llama_dir, ["r_units", "r_story"], kwargs, monkeypatch)
    saved = json.loads((out / ".partial" / "r_units.json").read_text())["run"]
    lines = [json.loads(line) for line in (data / "units.jsonl").read_text().splitlines()]
    lines[0]["source"] = "relabelled"
    (data / "units.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    resumed = slmeval.evaluate(tiny_llama_dir, ["r_units", "r_story"], resume=True, **kwargs)
    reason = resumed["provenance"]["resumed"]["r_units"]
    assert reason.startswith("recomputed: the item metadata"), reason
    hashes = resumed["provenance"]["task_hashes"]["r_units"]
    assert hashes["meta_sha256"] != saved["hashes"]["meta_sha256"]
    assert {k: hashes[k] for k in ("items_sha256", "data_sha256")} == \
        {k: saved["hashes"][k] for k in ("items_sha256", "data_sha256")}
    relabelled = {s["id"]: s["meta"]["source"] for s in map(json.loads, (out / "samples_r_units.jsonl").open())}
    assert relabelled[str(lines[0]["id"])] == "relabelled"


def test_resume_explains_settings_changes_and_refuses_damaged_partials(world, tiny_llama_dir, tmp_path, monkeypatch):
    data, out = world["root"], tmp_path / "out"
    kwargs = _kwargs(world, data, out, tmp_path / "cache")
    _interrupted_run(tiny_llama_dir, ["r_units", "r_story"], kwargs, monkeypatch)
    partial = out / ".partial" / "r_units.json"
    good = partial.read_bytes()

    partial.write_bytes(good[: len(good) // 2])                          # cut short by a full disk
    with pytest.raises(PartialFileError, match=rf"{partial}: not a complete partial result"):
        slmeval.evaluate(tiny_llama_dir, ["r_units"], resume=True, **kwargs)
    partial.write_text(json.dumps({"fingerprint": "x", "run": {"metrics": {}}}))
    with pytest.raises(PartialFileError, match=r"run\.breakdowns, run\.samples, run\.hashes"):
        slmeval.evaluate(tiny_llama_dir, ["r_units"], resume=True, **kwargs)
    res = CliRunner().invoke(app, ["run", "--model", str(tiny_llama_dir), "--tasks", "r_units", "--data-root",
                                   str(data), "--include-path", str(world["tasks"]), "--output", str(out),
                                   "--resume", "--no-progress"])
    assert res.exit_code == 2 and "r_units.json" in res.output and "Traceback" not in res.output

    partial.write_bytes(good)
    changed = slmeval.evaluate(tiny_llama_dir, ["r_units"], resume=True, protocol="slamkit", **kwargs)
    assert "protocol or task definition changed" in changed["provenance"]["resumed"]["r_units"]


def test_partials_of_a_relative_output_live_in_its_partial_folder(tmp_path, monkeypatch):
    """`-o out` (relative): the partial is out/.partial/<task>.json — not out/out/.partial, which
    clean() (removing out/.partial) would leave behind for ever."""
    monkeypatch.chdir(tmp_path)
    store = PartialStore(Path("out"))
    assert store.path("t") == tmp_path / "out" / ".partial" / "t.json"
    store.save("t", "f", {"metrics": {}, "breakdowns": {}, "samples": [], "hashes": {"items_sha256": "i",
                                                                                    "data_sha256": "d"}})
    assert store.load("t")["fingerprint"] == "f"
    store.clean()
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["out"]


# ------------------------------------------------------------------------------------------- §2 names

def test_task_name_that_is_a_path_is_refused_and_writes_nothing(world, tiny_llama_dir, tmp_path):
    """The audit's attack: a task named x/../../../victim/results aimed at another run's results.json."""
    base = tmp_path / "runs"
    victim = base / "victim"
    victim.mkdir(parents=True)
    (victim / "results.json").write_text('{"results": {"precious": {"acc": 0.7}}}\n')
    (victim / "results.jsonl").write_text("precious\n")
    out = base / "mine" / "out"
    tasks = tmp_path / "evil"
    tasks.mkdir()
    (tasks / "evil.yaml").write_text(f"name: x/../../../victim/results\nfamily: pairs\nsource: units_jsonl\n"
                                     f"path: {world['root'] / 'units.jsonl'}\n")
    before = _tree(tmp_path)
    res = CliRunner().invoke(app, ["run", "--model", str(tiny_llama_dir), "--tasks", "x/../../../victim/results",
                                   "--include-path", str(tasks), "--output", str(out), "--resume", "--no-progress"])
    assert res.exit_code == 2, res.output
    assert "x/../../../victim/results" in res.output and "evil.yaml" in res.output      # the name and its file
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert _tree(tmp_path) == before                                     # not one byte written anywhere


def test_output_paths_are_resolved_inside_their_root(tmp_path):
    store = PartialStore(tmp_path / "out")
    for name in ("../escape", "a/b", ".."):
        with pytest.raises(ValueError, match="cannot be used as a file name"):
            store.path(name)
    run = slmeval.evaluator.TaskRun({}, {}, [], {})
    with pytest.raises(ValueError, match="task name '../../victim/results' cannot be used as a file name"):
        slmeval.evaluator._result_files(tmp_path / "out", {}, {"../../victim/results": run})
    (tmp_path / "out").mkdir()
    os.symlink(tmp_path, tmp_path / "out" / ".partial")                  # a planted symlink out of --output
    with pytest.raises(ValueError, match="outside"):
        store.path("ok")
    os.symlink(tmp_path, tmp_path / "out" / "samples_t.jsonl")
    with pytest.raises(ValueError, match="outside"):
        slmeval.evaluator._result_files(tmp_path / "out", {}, {"t": run})


# ------------------------------------------------------------------------------- §5 fail before work

def test_unwritable_output_or_cache_fails_before_any_audio_work(world, tiny_llama_dir, tmp_path):
    """A path below a regular file cannot be created by anyone, root included (ENOTDIR)."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    tok = CountingTokenizer(load_tokenizer(world["tok"]))
    for where in ("output", "cache_dir"):
        kwargs = _kwargs(world, world["root"], tmp_path / "out", tmp_path / "cache")
        kwargs[where], kwargs["tokenizer"] = blocker / "sub", tok
        flag = "--output" if where == "output" else "--cache-dir"
        with pytest.raises(OutputError, match=rf"{flag} {blocker / 'sub'} is not writable \(Not a directory\)"):
            slmeval.evaluate(tiny_llama_dir, ["r_story"], **kwargs)
    assert tok.calls == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into mode-0555 folders; the RLIMIT test covers root")
def test_read_only_output_folder_fails_before_work(world, tiny_llama_dir, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="is not writable"):
            slmeval.evaluate(tiny_llama_dir, ["r_units"], **_kwargs(world, world["root"], out, tmp_path / "c"))
    finally:
        out.chmod(0o755)


def _limited_run(args: list[str], max_file_bytes: int, cwd: Path) -> subprocess.CompletedProcess:
    """`slmeval run` in a child whose files may not grow past `max_file_bytes` (RLIMIT_FSIZE): writes
    beyond it fail with EFBIG, for root as for anyone — a disk that fills up, reproducibly."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200"}
    return subprocess.run(SLMEVAL + ["run", *args], capture_output=True, text=True, preexec_fn=limit,
                          cwd=cwd, env=env, timeout=300)


def test_too_little_free_space_is_refused_before_work(world, tiny_llama_dir, tmp_path, monkeypatch):
    tok = CountingTokenizer(load_tokenizer(world["tok"]))
    kwargs = {**_kwargs(world, world["root"], tmp_path / "out", tmp_path / "cache"), "tokenizer": tok}
    free = shutil.disk_usage(tmp_path).free
    monkeypatch.setattr("slmeval.results.preflight.OUTPUT_BYTES_PER_PAIR", free)     # 3 pairs: 3x the free space
    with pytest.raises(OutputError, match=r"--output .*: about .* MiB will be written but only .* MiB is free"):
        slmeval.evaluate(tiny_llama_dir, ["r_story"], **kwargs)
    monkeypatch.undo()
    monkeypatch.setattr("slmeval.results.preflight.CACHE_BYTES_PER_ENTRY", free // 2)   # 6 files: 3x the free space
    with pytest.raises(OutputError, match=r"--cache-dir .*nothing was evaluated"):
        slmeval.evaluate(tiny_llama_dir, ["r_story"], **kwargs)
    assert tok.calls == 0


@pytest.mark.slow
def test_full_disk_during_a_run_keeps_previous_results(world, tiny_llama_dir, tmp_path):
    out = tmp_path / "out"
    common = ["--model", str(tiny_llama_dir), "--data-root", str(world["root"]), "--include-path",
              str(world["tasks"]), "--output", str(out), "--no-cache", "--no-progress"]
    first = CliRunner().invoke(app, ["run", "--tasks", "r_units", *common])
    assert first.exit_code == 0, first.output
    previous = _tree(out)

    # 64 KiB per file: r_units' partial result fits, r_big's (300 pairs) does not -> fails mid-run.
    midway = _limited_run(["--tasks", "r_units,r_big", *common], 64 * 1024, tmp_path)
    text = midway.stdout + midway.stderr
    assert midway.returncode == 2, text
    assert "Traceback" not in text and text.count("error:") == 1
    assert f"cannot write {out / '.partial' / 'r_big.json'}: File too large" in " ".join(text.split())
    assert {k: v for k, v in _tree(out).items() if not k.startswith(".partial")} == previous


def test_files_of_a_run_change_together_or_not_at_all(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("samples_a.jsonl", "samples_b.jsonl", "results.json"):
        (out / name).write_text(f"old {name}\n")
    before = _tree(out)
    files = {out / "samples_a.jsonl": "new a\n", out / "samples_b.jsonl": "x" * 200_000, out / "results.json": "{}\n"}
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))           # samples_b cannot be written
    try:
        with pytest.raises(OutputError, match=r"cannot write .*samples_b\.jsonl: File too large; the previous"):
            write_files_together(files)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert _tree(out) == before                                          # no new file, no temp file left
    write_files_together(files)
    assert (out / "samples_a.jsonl").read_text() == "new a\n" and (out / "results.json").read_text() == "{}\n"


def test_a_unit_cache_write_failure_names_the_entry(tmp_path):
    cache = UnitCache(tmp_path / "cache", {"kind": "test"})
    sha = "ab" * 32
    (cache.dir / "ab").write_text("a file where the shard folder goes")      # fails for root too
    with pytest.raises(OutputError, match=rf"cannot write unit cache entry .*{sha}\.units: File exists.*--no-cache"):
        cache.put(sha, np.array([1, 2], dtype=np.int64))


# ------------------------------------------------------------------------------------ §6 warnings

def test_identical_sides_and_near_silent_audio_are_counted_but_warned(world, tiny_llama_dir, tmp_path):
    data = _copy_data(world, tmp_path)
    story = data / "story"
    shutil.copyfile(story / "0_a1b2-c3_correct.wav", story / "1_a1b2-c3_incorrect.wav")   # same audio
    rng = np.random.default_rng(0)
    hiss = (rng.standard_normal(16_000) * 10 ** (-70 / 20)).astype(np.float32)          # -70 dBFS
    write_audio(story / "5_10_incorrect.wav", hiss)
    assert level_dbfs(speech("the cat sleeps", "en-us")) > -40                         # real speech is not flagged
    cache = tmp_path / "cache"
    distinct = len({hashlib.sha256(f.read_bytes()).digest() for f in story.glob("*.wav")})
    for attempt in range(2):                    # the second run reads every unit from the cache
        tok = CountingTokenizer(load_tokenizer(world["tok"]))
        results = slmeval.evaluate(tiny_llama_dir, ["r_story"], **{**_kwargs(world, data, None, cache), "tokenizer": tok})
        assert results["results"]["r_story"]["n_pairs"] == 3                            # still counted
        notes = results["warnings"]["r_story"]
        assert any("identical positive and negative audio" in n and "a1b2-c3" in n for n in notes), notes
        assert any("near-silent" in n and "5_10_incorrect.wav" in n for n in notes), notes
        assert not any("story_two" in n for n in notes)
        assert tok.calls == (distinct if attempt == 0 else 0)


# -------------------------------------------------------------------------------- umask, concurrency

@pytest.mark.parametrize("umask", [0o022, 0o007])
def test_result_files_follow_the_umask(world, tiny_llama_dir, tmp_path, umask):
    out = tmp_path / "out"
    old = os.umask(umask)
    try:
        res = CliRunner().invoke(app, ["run", "--model", str(tiny_llama_dir), "--tasks", "r_units,r_story",
                                       "--data-root", str(world["root"]), "--include-path", str(world["tasks"]),
                                       "--tokenizer", world["tok"], "--cache-dir", str(tmp_path / "cache"),
                                       "--output", str(out), "--no-progress"])
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    written = [p for p in (tmp_path / "out").rglob("*")] + [p for p in (tmp_path / "cache").rglob("*")]
    assert len([p for p in written if p.name.startswith("samples_")]) == 2
    for path in written:
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        assert path.stat().st_mode & 0o777 == expected, path


@pytest.mark.slow
def test_two_processes_share_one_cold_cache(world, tiny_llama_dir, tmp_path):
    cache = tmp_path / "cache"
    procs = [subprocess.Popen(SLMEVAL + ["run", "--model", str(tiny_llama_dir), "--tasks", "r_story",
                                         "--data-root", str(world["root"]), "--include-path", str(world["tasks"]),
                                         "--tokenizer", world["tok"], "--cache-dir", str(cache),
                                         "--output", str(tmp_path / f"out{i}"), "--no-progress"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    runs = [json.loads((tmp_path / f"out{i}" / "results.json").read_text()) for i in range(2)]
    assert runs[0]["results"] == runs[1]["results"]
    assert runs[0]["provenance"]["task_hashes"] == runs[1]["provenance"]["task_hashes"]
    samples = [(tmp_path / f"out{i}" / "samples_r_story.jsonl").read_text() for i in range(2)]
    assert samples[0] == samples[1]
    entries = list(cache.rglob("*.units"))
    distinct = {hashlib.sha256(f.read_bytes()).hexdigest() for f in (world["root"] / "story").glob("*.wav")}
    assert {p.stem for p in entries} == distinct and not [p for p in cache.rglob("*") if p.name.startswith(".")]   # no temp left
    tok = load_tokenizer(world["tok"])
    unit_cache = UnitCache(cache, tok.identity)
    for entry in entries:
        assert unit_cache.get(entry.stem) is not None                   # every entry intact (checksummed)
