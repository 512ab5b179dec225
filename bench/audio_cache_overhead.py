"""Benchmark (issue 22): what the audio path adds per pair when every unit comes from the unit cache.

The same pairs evaluated two ways, side by side, interleaved, in one warm process:
- audio, cache warm: a `paired_folder` task of 0.8 s noise files (16 kHz, PCM16; ~38 units a side after
  de-duplication, as bench/harness_overhead.py's ~40) with a log-mel + k-means tokenizer whose units are
  all in the cache already: hash every file, read every entry (`UnitCache.get_many`), score, write.
- pre-tokenised: a `units_jsonl` task holding exactly those units (read back from the cache).
Both score the same sequences with the same tiny Llama, so their difference is the audio path's own cost:
reading and hashing the files and reading the cache entries. Marginal over the base size (start-up cancels):

    python bench/audio_cache_overhead.py [--pairs 4000] [--base 500] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness_overhead import make_model  # noqa: E402

SECONDS, RATE, N_UNITS = 0.8, 16000, 500


def make_audio_task(folder: Path, n_pairs: int, seed: int) -> Path:
    """2·n distinct noise files `<k>_s.wav` (paired_folder: 2i positive, 2i+1 negative) and the task file."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    audio = folder / "audio"
    audio.mkdir(parents=True)
    for k in range(2 * n_pairs):
        sf.write(audio / f"{k}_s.wav", rng.normal(0, 0.1, int(SECONDS * RATE)), RATE, subtype="PCM_16")
    (folder / "task.yaml").write_text(f"name: bench_audio_{n_pairs}\nsource: paired_folder\npath: ./audio\n"
                                      "options: {sep: _}\n")
    return folder


def make_units_twin(folder: Path, audio_task: Path, n_pairs: int, tok, cache) -> Path:
    """The audio task's units, pre-tokenised: what the cache holds for each file, in pair order."""
    import hashlib

    folder.mkdir(parents=True)
    with (folder / "pairs.jsonl").open("w") as fh:
        for i in range(n_pairs):
            sides = []
            for k in (2 * i, 2 * i + 1):
                sha = hashlib.sha256((audio_task / "audio" / f"{k}_s.wav").read_bytes()).hexdigest()
                units = cache.get(sha)
                sides.append(np.asarray(units).tolist())
            fh.write(json.dumps({"id": str(i), "positive": sides[0], "negative": sides[1]}) + "\n")
    (folder / "task.yaml").write_text(f"name: bench_units_{n_pairs}\nsource: units_jsonl\npath: ./pairs.jsonl\n")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=4000)
    ap.add_argument("--base", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch

    import slmeval
    from slmeval.units import LogMelTokenizer, UnitCache

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    tok = LogMelTokenizer(np.random.default_rng(0).normal(size=(N_UNITS, 40)))
    with tempfile.TemporaryDirectory(prefix="slmeval-audio-cache-") as tmp:
        work = Path(tmp)
        model, cache_dir = make_model(work / "model", "tiny", N_UNITS), work / "cache"
        tasks: dict[tuple[str, int], tuple[Path, str, dict]] = {}
        for n in (args.base, args.pairs):
            audio = make_audio_task(work / f"audio-{n}", n, seed=n)
            # cold run: fills the cache (not timed)
            slmeval.evaluate(model, [f"bench_audio_{n}"], include_path=[audio], tokenizer=tok,
                             cache_dir=str(cache_dir), batch_size=64, progress=False)
            units = make_units_twin(work / f"units-{n}", audio, n, tok, UnitCache(cache_dir, tok.identity))
            tasks[("audio", n)] = (audio, f"bench_audio_{n}", {"tokenizer": tok, "cache_dir": str(cache_dir)})
            tasks[("units", n)] = (units, f"bench_units_{n}", {})
        best: dict[tuple[str, int], float] = {}
        for r in range(args.repeats + 1):            # the first round warms up
            for key, (folder, name, extra) in tasks.items():
                with tempfile.TemporaryDirectory(dir=work) as out:
                    t0 = time.perf_counter()
                    slmeval.evaluate(model, [name], include_path=[folder], output=out, batch_size=64,
                                     progress=False, **extra)
                    spent = time.perf_counter() - t0
                if r:
                    best[key] = min(spent, best.get(key, spent))
    extra_pairs = args.pairs - args.base
    marginal = {kind: (best[(kind, args.pairs)] - best[(kind, args.base)]) / extra_pairs * 1e6
                for kind in ("audio", "units")}
    print(f"# audio_cache_overhead — cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores) — "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"torch {torch.__version__}, 1 thread, --batch-size 64, {SECONDS} s noise files (~38 units a side), "
          f"min of {args.repeats} interleaved repeats; marginal = ({args.pairs:,} pairs − {args.base:,}) per pair; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| pairs | audio, cache warm s | same units pre-tokenised s | marginal audio µs/pair | "
          "marginal pre-tokenised µs/pair | the audio path's own cost µs/pair |\n|---|---|---|---|---|---|")
    for n in (args.base, args.pairs):
        tail = (f"{marginal['audio']:.1f} | {marginal['units']:.1f} | {marginal['audio'] - marginal['units']:.1f}"
                if n == args.pairs else "— | — | —")
        print(f"| {n:,} | {best[('audio', n)]:.2f} | {best[('units', n)]:.2f} | {tail} |")


if __name__ == "__main__":
    main()
