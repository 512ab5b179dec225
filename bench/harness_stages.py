"""Where `slmeval run`'s per-pair time goes, by stage (issue 22's profile): the workload of
bench/harness_overhead.py, each stage's marginal time (N pairs minus 1,000) in µs/pair.

Stages are timed by wrapping the functions that do them (each called a few times per task, or once
per sequence in code before issue 22, where the wrapper adds ~0.3 µs a call): read + validate
(`read_task`), units + content hashes (`_units_for`), item / metadata / data hashes, token ids
(`build_tokens` / `token_arrays`), de-duplication, the model's forward (backbone + log-softmax head),
the rest of batching and per-sequence sums (`score_sequences` minus the above), the partial result,
the result files; "samples, credits, metrics" is what `run_task` spends outside all of those. Runs in
one warm process, min over repeats. Works on the code before issue 22 too (same function names):

    python bench/harness_stages.py [--pairs 20000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness_overhead import TASK, make_model, make_task  # noqa: E402

STAGES = [("read + validate JSONL", "slmeval.evaluator", "read_task"),
          ("units + content hashes", "slmeval.evaluator", "_units_for"),
          ("item / metadata / data hashes", "slmeval.evaluator", "items_sha256"),
          ("item / metadata / data hashes", "slmeval.evaluator", "_meta_hash"),
          ("item / metadata / data hashes", "slmeval.evaluator", "data_sha256"),
          ("token ids", "slmeval.scoring.batch", "build_tokens"),
          ("token ids", "slmeval.scoring.batch", "token_arrays"),
          ("token ids", "slmeval.scoring.tokens", "table_tokens"),          # after issue 22's memory pass:
          ("token ids", "slmeval.scoring.tokens", "TokenTable.take"),       # checked at once, built per batch
          ("de-duplication (token ids)", "slmeval.scoring.batch", "distinct_sequences"),
          ("de-duplication (units)", "slmeval.evaluator", "distinct_sequences"),
          ("model forward (backbone + log-softmax head)", "slmeval.models.base", "LoadedLM.hidden_states"),
          ("model forward (backbone + log-softmax head)", "slmeval.scoring.batch", "target_logprobs"),
          ("partial result (--resume file)", "slmeval.results.resume", "PartialStore.save"),
          ("result files", "slmeval.evaluator", "write_files_together"),
          ("_score", "slmeval.evaluator", "score_sequences"),
          ("_score", "slmeval.evaluator", "score_columns"),
          ("_task", "slmeval.evaluator", "run_task")]


def instrument(spent: dict[str, float]) -> None:
    import importlib

    for stage, module, name in STAGES:
        owner = importlib.import_module(module)
        attr = name
        if "." in name:
            cls, attr = name.split(".")
            owner = getattr(owner, cls)
        fn = getattr(owner, attr, None)
        if fn is None:
            continue

        def wrapper(*a, __fn=fn, __stage=stage, **k):
            t0 = time.perf_counter()
            try:
                return __fn(*a, **k)
            finally:
                spent[__stage] += time.perf_counter() - t0
        setattr(owner, attr, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=20000)
    ap.add_argument("--base", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch

    import slmeval

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="slmeval-stages-") as tmp:
        work = Path(tmp)
        model = make_model(work / "model", "tiny")
        tasks = {n: make_task(work / f"task-{n}", n) for n in (args.base, args.pairs)}
        spent: dict[str, float] = defaultdict(float)
        instrument(spent)
        best: dict[int, dict[str, float]] = {}
        for r in range(args.repeats + 1):           # the first round warms up
            for n, folder in tasks.items():
                spent.clear()
                with tempfile.TemporaryDirectory(dir=work) as out:
                    t0 = time.perf_counter()
                    slmeval.evaluate(model, [TASK], include_path=[folder], output=out, batch_size=64, progress=False)
                    spent["_total"] = time.perf_counter() - t0
                if r:
                    best[n] = {k: min(v, best.get(n, {}).get(k, v)) for k, v in spent.items()}
    per_pair = {k: (best[args.pairs].get(k, 0.0) - best[args.base].get(k, 0.0)) / (args.pairs - args.base) * 1e6
                for k in best[args.pairs]}
    inside_score = ["token ids", "de-duplication (token ids)", "model forward (backbone + log-softmax head)"]
    rows = {k: per_pair.get(k, 0.0) for k in dict.fromkeys(s for s, _, _ in STAGES if not s.startswith("_"))}
    rows["batching + per-sequence sums"] = per_pair.get("_score", 0) - sum(per_pair.get(k, 0) for k in inside_score)
    rows["samples, credits, metrics"] = per_pair.get("_task", 0) - per_pair.get("_score", 0) - sum(
        per_pair.get(k, 0) for k in ("units + content hashes", "item / metadata / data hashes", "de-duplication (units)"))
    print(f"# harness stages — {args.pairs:,} pairs minus {args.base:,}, µs/pair (min of {args.repeats}); "
          f"slmeval from {Path(slmeval.__file__).parent}")
    print("| stage | µs/pair |\n|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {v:.1f} |")
    harness = per_pair["_total"] - per_pair.get("model forward (backbone + log-softmax head)", 0)
    print(f"| **everything but the model forward** | **{harness:.1f}** |")
    print(f"| (whole run, marginal) | {per_pair['_total']:.1f} |")


if __name__ == "__main__":
    main()
