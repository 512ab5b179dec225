"""Benchmark: a sweep of 10 checkpoints does the audio work once (encoder calls counted).

10 random Llama checkpoints (growing width) on the bundled mini sStoryCloze (120 audio files), demo
log-mel tokenizer, no persistent unit cache. Side by side in one run:
  `slmeval sweep` (run_sweep)                       — units prepared once, every checkpoint reads them
  10 x `slmeval run --no-cache` (evaluate)           — what a shell loop over checkpoints does
  10 x `slmeval run` sharing a fresh unit cache      — the cache alone (still reads + hashes the files)
Counted: waveforms given to the encoder (a counting wrapper around the real tokenizer). Timed: wall
seconds of each after one untimed warm-up run (one round; the counts are the result, the times are context).

    python bench/sweep_audio_once.py [--checkpoints 10]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import environment, slm_model, save  # noqa: E402

import slmeval  # noqa: E402
from slmeval.sweep import Checkpoint, run_sweep  # noqa: E402
from slmeval.units import load_tokenizer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


class Counting:
    """The real tokenizer, counting the waveforms it encodes."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.identity, self.n_units, self.min_samples = inner.identity, inner.n_units, inner.min_samples

    def check_wave(self, wav):
        return self.inner.check_wave(wav)

    def encode_batch(self, wavs):
        self.calls += len(wavs)
        return self.inner.encode_batch(wavs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="slmeval-bench-sweep-"))
    ckpts = [Checkpoint(f"c{i}", str(slm_model(work / f"c{i}", hidden=16 + 8 * i, layers=1 + i % 3, heads=2,
                                               n_units=100, seed=i))) for i in range(args.checkpoints)]
    (work / "meta.csv").write_text("name,D\n" + "".join(f"c{i},{(i + 1) * 1e6}\n" for i in range(args.checkpoints)))
    tokenizer = load_tokenizer(str(REPO / "audio_assets" / "demo_tokenizer"))
    task = ["mini_sstorycloze"]
    result = {"benchmark": "sweep_audio_once", **environment("cpu"), "checkpoints": args.checkpoints,
              "audio_files": 120, "methods": {}}

    def record(name: str, fn) -> None:
        tok = Counting(tokenizer)
        t0 = time.perf_counter()
        fn(tok)
        result["methods"][name] = {"encoder_calls": tok.calls, "seconds": time.perf_counter() - t0}
        print(f"{name}: {tok.calls} encoder calls, {result['methods'][name]['seconds']:.1f} s", flush=True)

    # Warm-up outside the timings (imports, torch's first-call setup, the first task read): the method timed
    # first would otherwise carry them (an earlier run of this script put ~3 s of it on the sweep).
    slmeval.evaluate(ckpts[0].model, task, tokenizer=tokenizer, use_cache=False, output=None, progress=False)
    record("slmeval sweep", lambda tok: run_sweep(ckpts, task, output=work / "sweep", tokenizer=tok,
                                                   metadata=work / "meta.csv", use_cache=False, progress=False))
    record("10 x slmeval run --no-cache", lambda tok: [slmeval.evaluate(
        c.model, task, tokenizer=tok, use_cache=False, output=work / "runs" / c.name, progress=False) for c in ckpts])
    record("10 x slmeval run, one shared cache", lambda tok: [slmeval.evaluate(
        c.model, task, tokenizer=tok, cache_dir=work / "cache", output=work / "cached" / c.name, progress=False)
        for c in ckpts])
    sweep_rows = json.loads((work / "sweep" / "sweep.json").read_text())["runs"]
    loop_acc = [json.loads((work / "runs" / c.name / "results.json").read_text())["results"]["mini_sstorycloze"]["acc"]
                for c in ckpts]
    result["sweep_equals_separate_runs"] = [r["mini_sstorycloze/acc"] for r in sweep_rows] == loop_acc
    print(json.dumps(result, indent=2))
    lines = [f"# sweep_audio_once — cpu — {result['date']}", "",
             f"{args.checkpoints} checkpoints x mini_sstorycloze (120 audio files); accuracies of the sweep equal the "
             f"separate runs: {result['sweep_equals_separate_runs']}", "",
             "| method | encoder calls | seconds |", "|---|---|---|"]
    lines += [f"| {k} | {m['encoder_calls']} | {m['seconds']:.1f} |" for k, m in result["methods"].items()]
    save(args.out, f"sweep_audio_once-cpu-{result['date']}", result, lines)


if __name__ == "__main__":
    main()
