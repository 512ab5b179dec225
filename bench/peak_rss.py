"""Peak RSS of one process that runs `slmeval.evaluate` once on N pre-tokenised pairs (the workload of
bench/harness_overhead.py), so a checkout before a change and one after can be compared side by side:

    python bench/peak_rss.py ROOT N [--json]     # ROOT: the checkout to measure (its bench/ and slmeval/)

bench/harness_overhead.py runs it (--json) for each size: the run's own memory, without the plain loop's.
"""
from __future__ import annotations

import json
import logging
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    root, n = Path(sys.argv[1]).resolve(), int(sys.argv[2])
    sys.path[:0] = [str(root / "bench"), str(root)]     # the measured checkout wins over any installed copy
    import torch

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    from harness_overhead import TASK, make_model, make_task

    import slmeval

    work = Path(tempfile.mkdtemp(prefix="slmeval-rss-"))
    try:
        model, task = make_model(work / "m", "tiny"), make_task(work / "t", n)
        start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB
        t0 = time.perf_counter()
        slmeval.evaluate(model, [TASK], include_path=[task], output=str(work / "o"), batch_size=64, progress=False)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if "--json" in sys.argv:
            print(json.dumps({"pairs": n, "peak_mb": peak, "start_mb": start}))
            return
        print(f"{root.name} N={n}: peak RSS {peak:.0f} MB (before the run {start:.0f} MB), run "
              f"{time.perf_counter() - t0:.1f} s, slmeval from {Path(slmeval.__file__).parent}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
