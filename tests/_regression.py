"""Bit-identical regression of `slmeval run`'s output files (issue 22: the harness got faster, its
files must not change by one byte).

`python tests/_regression.py --write` records, from the code as it is, every file a fixed set of runs
writes (results.json and samples_<task>.jsonl), with only the fields that legitimately vary between
two runs normalised: the date, the slmeval version and git sha, and the temporary / checkout folders
inside paths. tests/test_regression_outputs.py reruns the same runs and compares byte for byte. The
fixture was written by the code of main at 930071b, without the per-pair overhead work of issue 22
(re-record after a deliberate change of the output, e.g. a new results.json field, and say so).
Re-recorded for issue 24 (tie credit declared per protocol in the task files): configs.mini_sblimp gained
`tie_value_by_protocol: {cuervo: 0.5}` (every sample and number of the mini runs unchanged); under
cuervo, reg_units_voices (voice_averaged, no tie rule of its own) credits its 12 ties 0 instead of 0.5
and config.protocol.tie_value_by_family is {}; the slamkit+custom run records `overridden: ["score"]`.

The runs: the four bundled mini tasks through the demo tokenizer and model (the audio path, unit
cache cold and then warm), units_jsonl tasks with ties (identical sides), the same unit sequence in
many pairs, a breakdown and a voice-averaged family, under the slmeval and cuervo protocols (tie
credits 0.5 / 0), a --resume that reuses a saved task, and (in the test) a 2-process torchrun.
"""
from __future__ import annotations

import gzip
import json
import platform
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "regression"
MODEL, TOKENIZER = REPO / "audio_assets" / "demo_model", REPO / "audio_assets" / "demo_tokenizer"
MINI = ["mini_sblimp", "mini_sstorycloze", "mini_tstorycloze", "mini_ms_sstorycloze"]
UNITS_TASKS = ["reg_units", "reg_units_voices"]

TASKS_YAML = """
- {name: reg_units, family: pairs, source: units_jsonl, path: ./units.jsonl, grouping: {breakdown: [kind]}}
- {name: reg_units_voices, family: voice_averaged, source: units_jsonl, path: ./voices.jsonl,
   grouping: {item: [item], voice: voice, breakdown: [kind]}}
"""


def write_units_tasks(folder: Path, n_units: int = 100, seed: int = 0) -> Path:
    """Units tasks with every case the scoring path treats specially: identical sides (ties), one
    sequence shared by many pairs (scored once), sequences equal across positive / negative of different
    pairs, single-unit sides, unicode ids and meta, and an item x voice grouping."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    shared = rng.integers(0, n_units, 17).tolist()
    rows = []
    for i in range(160):
        pos = rng.integers(0, n_units, int(rng.integers(1, 50))).tolist()
        neg = rng.integers(0, n_units, int(rng.integers(1, 50))).tolist()
        kind = ["tie", "shared", "crossed", "plain", "plain"][i % 5]
        if kind == "tie":
            neg = list(pos)
        elif kind == "shared":
            pos = list(shared) if i % 2 else pos
            neg = list(shared) if not i % 2 else neg
        elif kind == "crossed" and rows:
            pos = list(rows[-1]["negative"])      # the previous pair's negative is this one's positive
        rows.append({"id": f"p{i}" if i % 7 else f"pé{i}", "positive": pos, "negative": neg, "kind": kind,
                     "note": "ü\u2028x" if i == 3 else None})
    (folder / "units.jsonl").write_text("".join(json.dumps(r, ensure_ascii=i % 2 == 0) + "\n"
                                                for i, r in enumerate(rows)), encoding="utf-8")
    voices = []
    for item in range(40):
        pos = rng.integers(0, n_units, int(rng.integers(3, 30))).tolist()
        neg = rng.integers(0, n_units, int(rng.integers(3, 30))).tolist()
        for v, voice in enumerate(["v1", "v2", "v3"][: 2 + item % 2]):
            p = pos if v == 0 else rng.integers(0, n_units, len(pos)).tolist()
            voices.append({"id": f"i{item}_{voice}", "positive": p, "negative": p if item % 9 == 0 else neg,
                           "item": item, "voice": voice, "kind": f"k{item % 3}"})
    (folder / "voices.jsonl").write_text("".join(json.dumps(r) + "\n" for r in voices))
    (folder / "reg_tasks.yaml").write_text(TASKS_YAML)
    return folder


def _checkout_roots() -> dict[str, str]:
    """This checkout, and the one the built-in task files are read from (an editable install may point at
    another checkout than the tests': both are `<repo>`)."""
    import slmeval.tasks

    tasks_root = Path(next(iter(slmeval.tasks.__path__))).resolve().parent
    return {str(tasks_root): "<repo>", str(REPO): "<repo>"}


REPO_ROOTS = _checkout_roots()


def normalise(text: str, roots: dict[str, str]) -> str:
    """The bytes of a result file with what legitimately differs between runs replaced."""
    for path, label in sorted(roots.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(path, label)
    text = re.sub(r'"date": "[^"]*"', '"date": "<date>"', text)
    text = re.sub(r'"git_sha": (null|"[^"]*")', '"git_sha": "<git>"', text)
    return re.sub(r'"slmeval_version": "[^"]*"', '"slmeval_version": "<version>"', text)


def run_files(out: Path, roots: dict[str, str]) -> dict[str, str]:
    """Every file of a finished run folder (no partials left behind), normalised."""
    leftovers = [p.name for p in out.rglob("*") if p.is_file() and (p.name.startswith(".") or ".partial" in p.parts)]
    assert not leftovers, f"{out}: left behind {leftovers}"
    return {p.name: normalise(p.read_text(encoding="utf-8"), roots) for p in sorted(out.iterdir()) if p.is_file()}


def runs(work: Path) -> dict[str, dict[str, str]]:
    """name → {file name → normalised text} for every single-process run of the fixture."""
    import slmeval

    tasks = write_units_tasks(work / "tasks")
    cache = work / "cache"
    roots = {str(work): "<work>", **REPO_ROOTS}
    common = dict(model=MODEL, include_path=[tasks], batch_size=8, progress=False)
    out: dict[str, dict[str, str]] = {}
    for name, kwargs in {
        "mini_cold": dict(tasks=MINI, tokenizer=str(TOKENIZER), cache_dir=cache),
        "mini_warm": dict(tasks=MINI, tokenizer=str(TOKENIZER), cache_dir=cache, batch_size=5),
        "units_slmeval": dict(tasks=UNITS_TASKS),
        "units_cuervo": dict(tasks=UNITS_TASKS, protocol="cuervo", batch_size=3),
        "units_sum_eos": dict(tasks=UNITS_TASKS, protocol="slamkit", protocol_args="score=sum"),
    }.items():
        folder = work / name
        slmeval.evaluate(**{**common, **kwargs, "output": folder})
        out[name] = run_files(folder, roots)
    # --resume: reg_units is saved, then the run stops (as a killed run would) before reg_units_voices;
    # a second run reuses the saved task and computes the other
    import slmeval.evaluator as evaluator

    folder, real = work / "resumed", evaluator.run_task

    def stop_at_voices(cfg, *args, **kwargs):
        if cfg.name == "reg_units_voices":
            raise KeyboardInterrupt
        return real(cfg, *args, **kwargs)

    evaluator.run_task = stop_at_voices
    try:
        slmeval.evaluate(**common, tasks=UNITS_TASKS, output=folder)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the run should have stopped at reg_units_voices")
    finally:
        evaluator.run_task = real
    assert (folder / ".partial" / "reg_units.json").is_file()
    slmeval.evaluate(**common, tasks=UNITS_TASKS, output=folder, resume=True)
    out["units_resumed"] = run_files(folder, roots)
    return out


def torchrun_run(work: Path, tasks: Path | None = None) -> dict[str, str]:
    """2 ranks (gloo, CPU) on the units tasks and one audio task: ties and duplicates dealt across ranks."""
    import os
    import socket
    import subprocess

    tasks = tasks or write_units_tasks(work / "tasks")
    out = work / "torchrun"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port),
           "-m", "slmeval", "run", "--model", str(MODEL), "--tokenizer", str(TOKENIZER), "--tasks",
           ",".join([*UNITS_TASKS, "mini_sstorycloze"]), "--include-path", str(tasks), "--output", str(out),
           "--cache-dir", str(work / "torchrun_cache"), "--batch-size", "8", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_files(out, {str(work): "<work>", **REPO_ROOTS})


def environment() -> dict:
    """What the bits of a float32 forward depend on: compared byte for byte only where these match."""
    import torch

    return {"torch": torch.__version__, "machine": platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "python": sys.version.split()[0][:4]}


def write_fixture(folder: Path = FIXTURE) -> None:
    import tempfile

    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="slmeval-regression-") as tmp:
        found = runs(Path(tmp))
        found["torchrun_2"] = torchrun_run(Path(tmp))
    folder.mkdir(parents=True, exist_ok=True)
    for name, files in found.items():
        for file, text in files.items():
            (folder / name).mkdir(exist_ok=True)
            # gzip without a timestamp: the same text gives the same fixture bytes (~4x smaller in git)
            (folder / name / f"{file}.gz").write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
    (folder / "environment.json").write_text(json.dumps(environment(), indent=2) + "\n")


def read_fixture(folder: Path = FIXTURE) -> dict[str, dict[str, str]]:
    return {run.name: {f.name.removesuffix(".gz"): gzip.decompress(f.read_bytes()).decode("utf-8")
                       for f in sorted(run.iterdir())} for run in sorted(folder.iterdir()) if run.is_dir()}


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    if sys.argv[1:2] != ["--write"]:
        sys.exit("usage: python tests/_regression.py --write   (records the fixture from the code as it is)")
    write_fixture(Path(sys.argv[2]) if len(sys.argv) > 2 else FIXTURE)
