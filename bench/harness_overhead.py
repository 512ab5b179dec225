"""Benchmark: what `slmeval run` costs per pair on top of the model's own forward (issue 22: ≤ 50 µs).

Workload (CPU): N pre-tokenised pairs (`units_jsonl`, ~40 units a side, 500 units), a 1-layer d=32 Llama,
--batch-size 64, one thread. Two things are timed on the same sequences, side by side, interleaved:

- plain loop: the least a scorer can do — sort all 2N sequences by length, pad, forward, log-softmax,
  gather, mean, `.tolist()`. Nothing read from disk, nothing written.
- slmeval run: `slmeval.evaluate` (what the CLI calls) end to end — read the task file and JSONL, hash,
  build tokens, score, credits, metrics, results.json + samples JSONL written atomically.

Start-up (imports, model loading, task registry) is the same at every N, so the harness's per-pair cost
is marginal: (run(N) − run(1,000)) − (loop(N) − loop(1,000)), over N − 1,000 pairs. Each time is the
min over interleaved repeats (a busy neighbour slows both alike). Every measurement runs in a fresh
child process, which also reports its peak RSS (memory must stay bounded as N grows).

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
    """(seconds, seconds inside forward + log-softmax), sequences already in memory as token lists."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device).eval()
    seqs = []
    for line in (task_dir / "pairs.jsonl").read_text().splitlines():
        row = json.loads(line)
        seqs += [[1] + [u + 3 for u in row["positive"]], [1] + [u + 3 for u in row["negative"]]]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start, in_model = time.perf_counter(), 0.0
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
    return time.perf_counter() - start, in_model


def slmeval_run(model_dir: Path, task_dir: Path, batch_size: int, device: str, out: Path) -> tuple[float, float]:
    import slmeval

    start = time.perf_counter()
    slmeval.evaluate(model_dir, [TASK], include_path=[task_dir], output=out, batch_size=batch_size,
                     device=device, progress=False)
    return time.perf_counter() - start, float("nan")


def child(args: argparse.Namespace) -> None:
    """One measurement in this fresh process; prints a JSON line."""
    import logging

    import torch

    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    model_dir, task_dir = work / f"model-{args.shape}", work / f"task-{args.pairs}"
    if args.method == "loop":
        seconds, in_model = plain_loop(model_dir, task_dir, args.batch_size, args.device)
    else:
        with tempfile.TemporaryDirectory(dir=work) as out:
            seconds, in_model = slmeval_run(model_dir, task_dir, args.batch_size, args.device, Path(out))
    print(json.dumps({"seconds": seconds, "forward_seconds": in_model,
                      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure(args: argparse.Namespace, method: str, pairs: int, shape: str) -> dict:
    cmd = [sys.executable, __file__, "--child", method, "--pairs", str(pairs), "--shape", shape, "--work", args.work,
           "--batch-size", str(args.batch_size), "--threads", str(args.threads), "--device", args.device]
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
    ap.add_argument("--child", choices=["loop", "run"], help=argparse.SUPPRESS)
    ap.add_argument("--pairs", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--shape", default="tiny", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.method = args.child
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
            times: dict[tuple[str, int], list[dict]] = {}
            for _ in range(args.repeats):       # interleaved: loop and run alternate at every size
                for n in sizes:
                    for method in ("loop", "run"):
                        times.setdefault((method, n), []).append(measure(args, method, n, shape))
            lines = table(shape, sizes, base, times)
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
            f"min of {args.repeats} interleaved repeats, each in a fresh process; load average {os.getloadavg()[0]:.1f}",
            f"marginal = time(N) − time({base:,}): start-up and model loading cancel out",
            "overhead µs/pair = (run marginal − loop marginal) / (N − %s); target ≤ 50" % f"{base:,}"]


def table(shape: str, sizes: list[int], base: int, times: dict) -> list[str]:
    best = {k: min(r["seconds"] for r in v) for k, v in times.items()}
    rss = {k: max(r["max_rss_mb"] for r in v) for k, v in times.items()}
    fwd = {n: min(r["forward_seconds"] for r in times[("loop", n)]) for n in sizes}
    d, layers, _, _ = SHAPES[shape]
    lines = ["", f"## model {shape} (Llama d={d}, {layers} layer(s), V=503)", "",
             "| pairs | plain loop s | slmeval run s | ratio run/loop | loop marginal s | run marginal s "
             "| overhead µs/pair | pairs/s (run) | forward share of loop | peak RSS run MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for n in sizes:
        loop, run = best[("loop", n)], best[("run", n)]
        if n == base:
            marg = "—", "—", "—"
        else:
            lm, rm = loop - best[("loop", base)], run - best[("run", base)]
            marg = f"{lm:.2f}", f"{rm:.2f}", f"{(rm - lm) / (n - base) * 1e6:.1f}"
        lines.append(f"| {n:,} | {loop:.2f} | {run:.2f} | {run / loop:.2f} | {marg[0]} | {marg[1]} | {marg[2]} "
                     f"| {n / run:,.0f} | {fwd[n] / loop:.0%} | {rss[('run', n)]:.0f} |")
    return lines


if __name__ == "__main__":
    main()
