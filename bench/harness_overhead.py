"""Benchmark: what `slmeval run` costs per pair on top of the model's own forward (issue 22: ≤ 50 µs).

Workload (CPU): N pre-tokenised pairs (`units_jsonl`, ~40 units a side, 500 units), a 1-layer d=32 Llama,
--batch-size 64, one thread. Two things are timed on the same sequences, side by side, interleaved:

- plain loop: the least a scorer can do — sort all 2N sequences by length, pad, forward, log-softmax,
  gather, mean, `.tolist()`. Nothing read from disk, nothing written.
- slmeval run: `slmeval.evaluate` (what the CLI calls) end to end — read the task file and JSONL, hash,
  build tokens, score, credits, metrics, results.json + samples JSONL written atomically.

Start-up (imports, model loading, task registry) is the same at every N, so the harness's per-pair cost
is marginal: (run(N) − run(1,000)) − (loop(N) − loop(1,000)), over N − 1,000 pairs. slmeval's own forward
is cheaper than the loop's (the head sees only real positions, no padding), which hides part of its Python
cost in that difference, so the table also shows the run's marginal time outside its own forward (the
backbone and the log-softmax head, timed inside the run): the harness alone. Each time is the
min over interleaved repeats (a busy neighbour slows both alike). Each N is measured in its own child
process (warm: imports, model files and every batch shape seen once), which also reports its peak RSS
(memory must stay bounded as N grows). `slmeval run` here is `slmeval.evaluate`, which the CLI calls
(the CLI adds a table print per task, nothing per pair).

    python bench/harness_overhead.py [--sizes 1000 20000 100000] [--repeats 3]
    python bench/harness_overhead.py --device cuda --shapes 20M 85M 155M   # on a GPU: model shapes of the
        # Cuervo suite; prints pairs/s and the fraction of wall time spent in the plain loop's forward
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# d, layers, heads, intermediate: Llama shapes of the Cuervo & Marxer suite sizes (approximate parameter counts)
SHAPES = {"tiny": (32, 1, 2, 88), "20M": (384, 8, 6, 1024), "85M": (768, 12, 12, 2048), "155M": (1024, 12, 16, 2816)}
TASK = "bench_overhead_units"


def make_model(folder: Path, shape: str, n_units: int = 500) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    d, layers, heads, inter = SHAPES[shape]
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=n_units + 3, hidden_size=d, intermediate_size=inter, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=1024,
                      pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "offset": 3}))
    return folder


def make_task(folder: Path, n_pairs: int, n_units: int = 500, seed: int = 0) -> Path:
    """~40 units a side (30–50), sBLIMP-like: both sides share most units."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "pairs.jsonl").open("w") as fh:
        for i in range(n_pairs):
            pos = rng.integers(0, n_units, int(rng.integers(30, 51)))
            neg = pos.copy()
            neg[rng.integers(0, len(neg), 3)] = rng.integers(0, n_units, 3)
            fh.write(json.dumps({"id": f"p{i}", "positive": pos.tolist(), "negative": neg.tolist(),
                                 "type": f"t{i % 6}"}) + "\n")
    (folder / "task.yaml").write_text(f"name: {TASK}\nsource: units_jsonl\npath: ./pairs.jsonl\n"
                                      "grouping: {breakdown: [type]}\n")
    return folder


def plain_loop(model_dir: Path, task_dir: Path, batch_size: int, device: str) -> tuple[float, float]:
    """(seconds, CPU seconds, seconds inside forward + log-softmax), sequences in memory as token lists."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device).eval()
    seqs = []
    for line in (task_dir / "pairs.jsonl").read_text().splitlines():
        row = json.loads(line)
        seqs += [[1] + [u + 3 for u in row["positive"]], [1] + [u + 3 for u in row["negative"]]]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start, cpu, in_model = time.perf_counter(), time.process_time(), 0.0
    with torch.inference_mode():
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
        scores = [0.0] * len(seqs)
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            width = len(seqs[idx[0]])
            ids = torch.zeros((len(idx), width), dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, :len(seqs[i])] = torch.tensor(seqs[i])
                mask[r, :len(seqs[i])] = 1
            ids, mask = ids.to(device), mask.to(device)
            t0 = time.perf_counter()
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
            sync()
            in_model += time.perf_counter() - t0
            picked = logp.gather(2, ids[:, 1:, None]).squeeze(2) * mask[:, 1:]
            means = (picked.sum(1) / mask[:, 1:].sum(1)).tolist()
            for i, m in zip(idx, means):
                scores[i] = m
    return time.perf_counter() - start, time.process_time() - cpu, in_model


def slmeval_run(model_dir: Path, task_dir: Path, batch_size: int, device: str, out: Path
                ) -> tuple[float, float, float]:
    import torch

    import slmeval
    import slmeval.scoring.batch as batch
    from slmeval.models.base import LoadedLM

    # time inside slmeval's own forward: the backbone and the log-softmax head (synchronised on a GPU)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    in_model = [0.0]

    def timed(fn):
        def wrapper(*a, **k):
            sync()
            t0 = time.perf_counter()
            result = fn(*a, **k)
            sync()
            in_model[0] += time.perf_counter() - t0
            return result
        return wrapper

    saved = LoadedLM.hidden_states, batch.target_logprobs
    LoadedLM.hidden_states, batch.target_logprobs = timed(saved[0]), timed(saved[1])
    try:
        start, cpu = time.perf_counter(), time.process_time()
        slmeval.evaluate(model_dir, [TASK], include_path=[task_dir], output=out, batch_size=batch_size,
                         device=device, progress=False)
        return time.perf_counter() - start, time.process_time() - cpu, in_model[0]
    finally:
        LoadedLM.hidden_states, batch.target_logprobs = saved


def child(args: argparse.Namespace) -> None:
    """One size N in this fresh process, warm (imports, model files, every batch shape seen once): the plain
    loop and slmeval run on the base size and on N, interleaved, `repeats` times; prints a JSON line."""
    import gc
    import logging

    import torch

    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    model_dir = work / f"model-{args.shape}"
    base_dir, task_dir = work / f"task-{args.base}", work / f"task-{args.pairs}"

    def once(method: str, folder: Path) -> tuple[float, float, float]:
        gc.collect()
        if method == "loop":
            return plain_loop(model_dir, folder, args.batch_size, args.device)
        with tempfile.TemporaryDirectory(dir=work) as out:
            return slmeval_run(model_dir, folder, args.batch_size, args.device, Path(out))

    once("loop", base_dir), once("run", base_dir)            # warm-up, not counted
    times: dict[str, list] = {}
    for _ in range(args.repeats):
        for method in ("loop", "run"):
            for size, folder in ((args.base, base_dir), (args.pairs, task_dir)):
                times.setdefault(f"{method}:{size}", []).append(once(method, folder))
    # min by wall time; the CPU and forward seconds of that same repeat
    out = {key: dict(zip(("seconds", "cpu_seconds", "forward_seconds"), min(v))) for key, v in times.items()}
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def measure(args: argparse.Namespace, pairs: int, base: int, shape: str) -> dict:
    cmd = [sys.executable, __file__, "--child", "--pairs", str(pairs), "--base", str(base), "--shape", shape,
           "--work", args.work, "--batch-size", str(args.batch_size), "--threads", str(args.threads),
           "--device", args.device, "--repeats", str(args.repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000, 100000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--shapes", nargs="+", default=["tiny"], choices=list(SHAPES))
    ap.add_argument("--note", default="", help="printed with the results (e.g. 'noisy (shared cores)')")
    ap.add_argument("--out", type=Path, default=None, help="also write the printed report to this file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--pairs", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--base", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--shape", default="tiny", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    sizes = sorted(set(args.sizes))
    base = sizes[0]
    with tempfile.TemporaryDirectory(prefix="slmeval-overhead-") as work:
        args.work = work
        for shape in args.shapes:
            make_model(Path(work) / f"model-{shape}", shape)
        for n in sizes:
            make_task(Path(work) / f"task-{n}", n)
        report = header(args, base)
        print("\n".join(report), flush=True)
        for shape in args.shapes:
            found = {n: measure(args, n, base, shape) for n in sizes if n != base}
            lines = table(shape, sizes, base, found)
            print("\n".join(lines), flush=True)
            report += lines
        if args.device == "cpu":
            lines = memory_table(sizes)
            print("\n".join(lines), flush=True)
            report += lines
    if args.out:
        from slmeval.io import atomic_write_text

        atomic_write_text(args.out, "\n".join(report) + "\n")


def header(args: argparse.Namespace, base: int) -> list[str]:
    import platform

    import torch

    device = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else (platform.processor() or platform.machine())
    return [f"# harness_overhead — {args.device} ({device}, {os.cpu_count()} cores visible) — "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}" + (f" — {args.note}" if args.note else ""),
            f"torch {torch.__version__}, {args.threads} thread(s), --batch-size {args.batch_size}, ~40 units a side, "
            f"min of {args.repeats} interleaved repeats; load average {os.getloadavg()[0]:.1f}",
            "each N in its own process (peak RSS is that process's: the run and the plain loop's token lists), "
            "warm: imports, model files and every batch shape seen once before timing; loop and run alternate on "
            "the base size and on N",
            f"marginal = time(N) − time({base:,}): start-up and model loading cancel out",
            "overhead µs/pair = (run marginal − loop marginal) / (N − %s); target ≤ 50. The CPU-time column is the"
            " same from each process's CPU time: on a shared machine it excludes the time spent waiting for a core"
            % f"{base:,}"]


def memory_table(sizes: list[int]) -> list[str]:
    """Peak RSS of `slmeval.evaluate` alone (bench/peak_rss.py: a fresh process, tiny model, one run; the
    timing processes above also hold the plain loop's sequences), and its growth per pair: memory must
    stay bounded as N grows."""
    root = Path(__file__).resolve().parents[1]
    found = {}
    for n in sizes:
        proc = subprocess.run([sys.executable, str(root / "bench" / "peak_rss.py"), str(root), str(n), "--json"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"peak_rss.py {n} failed:\n{proc.stderr[-3000:]}")
        found[n] = json.loads(proc.stdout.strip().splitlines()[-1])
    base = sizes[0]
    lines = ["", "## memory: one slmeval run alone (tiny model, fresh process each)", "",
             "| pairs | peak RSS MB | before the run MB | peak above the %s-pair run MB | KB per extra pair |" % f"{base:,}",
             "|---|---|---|---|---|"]
    for n, r in found.items():
        extra = r["peak_mb"] - found[base]["peak_mb"]
        per = f"{extra * 1024 / (n - base):.2f}" if n != base else "—"
        lines.append(f"| {n:,} | {r['peak_mb']:.0f} | {r['start_mb']:.0f} | {extra:.0f} | {per} |")
    return lines


def table(shape: str, sizes: list[int], base: int, found: dict[int, dict]) -> list[str]:
    d, layers, _, _ = SHAPES[shape]
    lines = ["", f"## model {shape} (Llama d={d}, {layers} layer(s), V=503)", "",
             "| pairs | plain loop s | slmeval run s | ratio run/loop | loop marginal s | run marginal s "
             "| marginal ratio run/loop | overhead µs/pair | overhead µs/pair, CPU time | run minus its own forward, "
             "µs/pair | pairs/s (run) | forward share: loop / run | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    first = found[min(found)]
    loop0, run0 = first[f"loop:{base}"], first[f"run:{base}"]
    lines.append(f"| {base:,} | {loop0['seconds']:.2f} | {run0['seconds']:.2f} | {run0['seconds'] / loop0['seconds']:.2f} "
                 f"| — | — | — | — | — | — | {base / run0['seconds']:,.0f} | {loop0['forward_seconds'] / loop0['seconds']:.0%} "
                 f"/ {run0['forward_seconds'] / run0['seconds']:.0%} | — |")
    for n, r in found.items():
        b_loop, b_run, loop, run = r[f"loop:{base}"], r[f"run:{base}"], r[f"loop:{n}"], r[f"run:{n}"]
        lm, rm = loop["seconds"] - b_loop["seconds"], run["seconds"] - b_run["seconds"]
        cm = (run["cpu_seconds"] - b_run["cpu_seconds"]) - (loop["cpu_seconds"] - b_loop["cpu_seconds"])
        own = rm - (run["forward_seconds"] - b_run["forward_seconds"])
        lines.append(f"| {n:,} | {loop['seconds']:.2f} | {run['seconds']:.2f} | {run['seconds'] / loop['seconds']:.2f} "
                     f"| {lm:.2f} | {rm:.2f} | {rm / lm:.2f} | {(rm - lm) / (n - base) * 1e6:.1f} "
                     f"| {cm / (n - base) * 1e6:.1f} | {own / (n - base) * 1e6:.1f} | {n / run['seconds']:,.0f} "
                     f"| {loop['forward_seconds'] / loop['seconds']:.0%} / {run['forward_seconds'] / run['seconds']:.0%} "
                     f"| {r['max_rss_mb']:.0f} |")
    return lines


if __name__ == "__main__":
    main()
