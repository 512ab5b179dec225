"""Data parallel on a real torchrun (gloo, CPU): 2 ranks give the single-process results; a dead rank fails
the run; --resume finishes it with another world size; the unit cache takes many writers."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import slmeval
from slmeval.distributed import World
from slmeval.units import UnitCache, load_tokenizer

REPO = Path(__file__).resolve().parents[1]
MODEL, TOKENIZER = REPO / "audio_assets" / "demo_model", REPO / "audio_assets" / "demo_tokenizer"
AUDIO_TASK = "small_story"     # 12 pairs of the bundled mini sStoryCloze (espeak-ng speech, slprl layout)
# A units task, and the same task under a metric family that kills rank 1 (SIGKILL: no clean-up, no
# message) once its scores are in. Every task is read before any work, so the kill has to come later.
TASKS_PY = '''
import os, signal, time
from slmeval.metrics.families import METRIC_FAMILIES, pair_metrics

@METRIC_FAMILIES.register("dies_on_rank1")
def dying_metrics(df, grouping):
    where = (os.environ.get("RANK", "0"), os.environ.get("WORLD_SIZE", "1"))
    if where == (os.environ.get("KILL_RANK", "1"), os.environ.get("KILL_WORLD_SIZE", "2")):
        # Die only once rank 0 has saved this task: torchrun stops the survivors as soon as it sees the death,
        # and a test that expects the task to be resumable must not race that.
        deadline, wait_for = time.monotonic() + 60, os.environ.get("KILL_WHEN_EXISTS")
        while wait_for and not os.path.exists(wait_for) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)
    return pair_metrics(df, grouping)

TASKS = [{"name": "small_story", "source": "storycloze", "path": "./story"},
         {"name": "units_task", "source": "units_jsonl", "path": "./units.jsonl"},
         {"name": "units_task_dying", "family": "dies_on_rank1", "source": "units_jsonl", "path": "./units.jsonl"}]
'''


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tasks = tmp_path_factory.mktemp("tasks")
    rng = np.random.default_rng(0)
    rows = [{"id": f"p{i}", "positive": rng.integers(0, 100, int(rng.integers(5, 60))).tolist(),
             "negative": rng.integers(0, 100, int(rng.integers(5, 60))).tolist()} for i in range(23)]
    (tasks / "units.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tasks / "dist_tasks.py").write_text(TASKS_PY)
    (tasks / "story").mkdir()
    for f in (REPO / "audio_assets" / "mini_sstorycloze").iterdir():
        if f.name.split("_")[0].isdigit() and int(f.name.split("_")[0]) < 24:
            shutil.copy(f, tasks / "story" / f.name)
    ref = tmp_path_factory.mktemp("ref")
    slmeval.evaluate(MODEL, [AUDIO_TASK, "units_task"], tokenizer=str(TOKENIZER), include_path=[tasks],
                     output=ref, cache_dir=tmp_path_factory.mktemp("cache"), batch_size=8, progress=False)
    return {"tasks": tasks, "ref": ref}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return {**env, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def torchrun(n: int, *args: str, timeout: int = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n), "--master-port",
           str(_free_port()), "-m", "slmeval", "run", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**_env(), **(env or {})},
                          cwd=REPO)


def slmeval_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slmeval", "run", *args], capture_output=True, text=True,
                          timeout=240, env={**_env(), **(env or {})}, cwd=REPO)


def run_args(setup, tasks: str, out: Path, cache: Path, *extra: str) -> list[str]:
    return ["--model", str(MODEL), "--tokenizer", str(TOKENIZER), "--tasks", tasks, "--include-path",
            str(setup["tasks"]), "--output", str(out), "--cache-dir", str(cache), "--batch-size", "8",
            "--no-progress", *extra]


def assert_same_as_reference(ref: Path, out: Path, tasks: dict[str, str]) -> None:
    """Per-pair scores within 1e-5 of the single-process run, identical decisions, same metrics."""
    got, want = json.loads((out / "results.json").read_text()), json.loads((ref / "results.json").read_text())
    for task, ref_task in tasks.items():
        a = [json.loads(x) for x in (ref / f"samples_{ref_task}.jsonl").read_text().splitlines()]
        b = [json.loads(x) for x in (out / f"samples_{task}.jsonl").read_text().splitlines()]
        assert [r["id"] for r in a] == [r["id"] for r in b]
        for x, y in zip(a, b):
            for key in ("positive_score", "negative_score"):
                assert abs(x[key] - y[key]) <= 1e-5, (task, x["id"], key)
            assert x["correct"] == y["correct"] and x["positive_n"] == y["positive_n"]
        assert got["results"][task] == pytest.approx(want["results"][ref_task], abs=1e-12)
        assert got["provenance"]["task_hashes"][task]["data_sha256"] == \
            want["provenance"]["task_hashes"][ref_task]["data_sha256"]


def test_torchrun_two_ranks_equal_one_process(setup, tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    proc = torchrun(2, *run_args(setup, f"{AUDIO_TASK},units_task", out, cache))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_same_as_reference(setup["ref"], out, {AUDIO_TASK: AUDIO_TASK, "units_task": "units_task"})
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert proc.stdout.count("slmeval results") == 1          # one table: only rank 0 prints
    # each unique file was encoded by exactly one rank, and every cache entry is whole
    cache_obj = UnitCache(cache, load_tokenizer(str(TOKENIZER)).identity)
    entries = list(cache_obj.dir.rglob("*.units"))
    assert len(entries) == 24 and all(cache_obj.get(p.stem) is not None for p in entries)
    assert not list(out.rglob("*.tmp")) and not list(cache.rglob("*.tmp"))


def test_dead_rank_fails_the_run_and_resume_with_one_process_finishes_it(setup, tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    tasks = f"{AUDIO_TASK},units_task_dying,units_task"
    proc = torchrun(2, *run_args(setup, tasks, out, cache),
                    env={"KILL_WHEN_EXISTS": str(out / ".partial" / "units_task_dying.json")})
    assert proc.returncode != 0
    log = proc.stdout + proc.stderr
    assert "Signal 9" in log or "SIGKILL" in log, log[-3000:]      # torchrun names the rank that died
    assert not (out / "results.json").exists()
    # the finished (checkpoint, task) units were saved by rank 0; a single process picks them up
    proc = slmeval_cli(*run_args(setup, tasks, out, cache, "--resume"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert sorted(results["provenance"]["resumed"]) == [AUDIO_TASK, "units_task_dying"]
    assert all(r.startswith("reused") for r in results["provenance"]["resumed"].values())
    assert results["config"]["distributed"]["world_size"] == 1
    assert_same_as_reference(setup["ref"], out, {AUDIO_TASK: AUDIO_TASK, "units_task_dying": "units_task",
                                                 "units_task": "units_task"})


def _map_raising_on_rank1(rank: int, port: int, errors) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    world = World(rank, 2, rank, "gloo")

    def work(part: list[int]) -> list[int]:
        if world.rank == 1:
            raise ValueError(f"bad item in {part}")
        return part
    try:
        world.map(work, [10, 20, 30, 40])
    except ValueError as err:
        errors[rank] = (type(err).__name__, str(err), getattr(err, "reported_by_rank0", False))
    # the group still works: nobody was left waiting in a collective
    assert world.map(lambda part: [x + 1 for x in part], [1, 2, 3]) == [2, 3, 4]

    # columns (a task's scores as arrays): every rank gets every item's values in item order, also when
    # one rank's share is empty (one item), and a failure on one rank reaches both
    def columns(part: list[int]) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(part, dtype=np.float64) / 4, np.asarray(part, dtype=np.int64) * 10

    got = world.map_columns(columns, [3, 1, 4, 1, 5], weights=[3, 1, 4, 1, 5])
    assert [c.tolist() for c in got] == [[0.75, 0.25, 1.0, 0.25, 1.25], [30, 10, 40, 10, 50]]
    assert [c.dtype for c in got] == [np.float64, np.int64]
    assert [c.tolist() for c in world.map_columns(columns, [7])] == [[1.75], [70]]

    def failing(part: list[int]) -> tuple[np.ndarray]:
        if world.rank == 0:
            raise ValueError("rank 0 fails")
        return (np.asarray(part),)
    try:
        world.map_columns(failing, [1, 2])
    except ValueError as err:
        errors[f"columns{rank}"] = str(err)
    dist.destroy_process_group()


def test_error_on_one_rank_reaches_every_rank():
    import torch.multiprocessing as mp

    errors = mp.Manager().dict()
    mp.spawn(_map_raising_on_rank1, args=(_free_port(), errors), nprocs=2, join=True)
    assert errors[1] == ("ValueError", "bad item in [20, 40]", True)       # its own error, marked as shared
    assert errors[0][0] == "DistributedError"
    assert errors[0][1] == "rank 1 of 2 failed: ValueError: bad item in [20, 40]"
    assert errors["columns0"] == "rank 0 fails" and errors["columns1"] == "rank 0 of 2 failed: ValueError: rank 0 fails"


def test_errors_print_once_under_torchrun(monkeypatch, capsys):
    from slmeval.cli.run import report_error
    from slmeval.distributed import DistributedError

    shared = ValueError("task:b:positive: unit 3000")
    shared.reported_by_rank0 = True
    for rank, err, shown in [("0", DistributedError("rank 1 of 2 failed: x"), True), ("1", shared, False),
                             ("1", DistributedError("rank 0 of 2 failed: y"), False),
                             ("1", ValueError("only here"), True), ("0", shared, True)]:
        monkeypatch.setenv("RANK", rank)
        report_error(err)
        out = capsys.readouterr().out
        assert (str(err) in out) == shown, (rank, err, out)
    assert "🅱" not in out and "task:b:positive" in out       # no emoji / markup in messages


@pytest.mark.slow
def test_multi_node_torchrun_resumes_a_single_process_run(setup, tmp_path):
    """Two torchrun launchers (--nnodes 2, one process each, rendezvous on localhost) = two nodes; they
    resume a run a single process started (world size 1 → 2)."""
    out, cache = tmp_path / "out", tmp_path / "cache"
    # a single process dies after finishing units_task
    first = slmeval_cli(*run_args(setup, "units_task,units_task_dying", out, cache),
                        env={"KILL_RANK": "0", "KILL_WORLD_SIZE": "1"})
    assert first.returncode != 0 and not (out / "results.json").exists()
    port = str(_free_port())
    args = run_args(setup, f"units_task,{AUDIO_TASK}", out, tmp_path / "node_cache", "--resume")
    launchers = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank",
                                   str(node), "--nproc-per-node", "1", "--master-addr", "127.0.0.1",
                                   "--master-port", port, "-m", "slmeval", "run", *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(), cwd=REPO)
                 for node in (0, 1)]
    logs = [p.communicate(timeout=240)[0] for p in launchers]
    assert [p.returncode for p in launchers] == [0, 0], logs
    results = json.loads((out / "results.json").read_text())
    assert results["provenance"]["resumed"]["units_task"].startswith("reused")
    assert results["config"]["distributed"]["world_size"] == 2
    assert_same_as_reference(setup["ref"], out, {AUDIO_TASK: AUDIO_TASK, "units_task": "units_task"})


def test_world_share_and_map_in_one_process():
    assert World().map(lambda part: [x * 2 for x in part], [1, 2, 3]) == [2, 4, 6]
    assert [c.tolist() for c in World().map_columns(lambda part: (np.asarray(part) * 2,), [1, 2, 3])] == [[2, 4, 6]]
    weights = [5, 1, 9, 9, 2, 7, 3]
    shares = [World(rank=r, world_size=3).share(weights) for r in range(3)]
    # largest first to the least-loaded rank: 9→r0, 9→r1, 7→r2, 5→r2, 3→r0, 2→r1, 1→r1 (ties: lower rank)
    assert shares == [[2, 6], [1, 3, 4], [0, 5]]
    assert [sum(weights[i] for i in s) for s in shares] == [12, 12, 12]


def _hammer(cache_dir: str, identity: dict, seed: int, failures) -> None:
    """Rewrite and read back the same entries as the other processes, as fast as possible."""
    import hashlib

    cache = UnitCache(cache_dir, identity)
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(20)]
    rng = np.random.default_rng(seed)
    for _ in range(20):
        for i in rng.permutation(len(shas)):
            cache.put(shas[i], np.arange(i + 50, dtype=np.int64))
            got = cache.get(shas[i])
            if got is None or not np.array_equal(got, np.arange(i + 50)):   # None: it was found damaged
                failures.append((seed, int(i)))


def test_unit_cache_entries_stay_whole_under_concurrent_writers(tmp_path):
    """Many writers of the same entries (ranks, or two runs on one cache dir; two whole runs sharing a cold
    cache: tests/test_reliability_run.py): every read sees a whole entry, none is reported damaged."""
    import multiprocessing as mp

    identity = {"kind": "test", "n_units": 100}
    ctx = mp.get_context("fork")          # no re-import: the processes start at once and collide
    failures = ctx.Manager().list()
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), identity, seed, failures)) for seed in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0, 0, 0] and list(failures) == []
    cache = UnitCache(tmp_path, identity)
    assert len(list(cache.dir.rglob("*.units"))) == 20 and not list(tmp_path.rglob("*.tmp"))
