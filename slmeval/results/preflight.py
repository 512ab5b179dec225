"""Checks made before any audio or model work: can the output and cache folders be written, and is
there room for what the run will write?

A real write is attempted (a one-byte temp file, then removed) rather than asking `os.access`:
`access` answers for the permission bits only — root passes it on a read-only mount, and it knows
nothing of a full disk or a file-size limit — whereas the write fails exactly when the run would.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from slmeval.io import OutputError

# Bytes one pair costs in the output folder: a samples_<task>.jsonl line (~0.5 KB with its meta) and
# the same line again in the .partial/ copy kept for --resume, rounded up.
OUTPUT_BYTES_PER_PAIR = 2048
OUTPUT_BYTES_FIXED = 1 << 20           # results.json, zerospeech export, slack
# A unit-cache entry is one small file: at least one file-system block, plus its units (int64 at
# <= 50 Hz from 16-bit 16 kHz audio: <= 1/80 of the audio bytes; counted twice for safety).
CACHE_BYTES_PER_ENTRY = 4096
CACHE_BYTES_PER_AUDIO_BYTE = 1 / 40


def preflight(task_pairs: dict[str, list], out_dir: Path | None, cache_root: Path | None) -> None:
    """Everything that can be known to fail is checked before the first audio file is decoded: both
    folders writable, and room in each for what the run will write there (`task_pairs`: each task's pairs)."""
    if out_dir is not None:
        check_writable(out_dir, "--output")
        check_free_space(out_dir, estimate_output_bytes(sum(map(len, task_pairs.values()))), "--output")
    if cache_root is not None:
        check_writable(cache_root, "--cache-dir")
        sources = {u.audio if isinstance(u.audio, bytes) else str(u.audio): u.audio
                   for pairs in task_pairs.values() for p in pairs for u in (p.positive, p.negative) if u.units is None}
        check_free_space(cache_root, estimate_cache_bytes(sources.values()), "--cache-dir")


def check_writable(folder: str | Path, what: str) -> Path:
    """Create `folder` if needed and write (then remove) a one-byte file in it; OutputError if not."""
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".slmeval-write-test-")
        try:
            os.write(fd, b"\0")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as err:
        raise OutputError(f"{what} {folder} is not writable ({err.strerror or err}); nothing was evaluated. "
                          f"Choose another folder.") from None
    return folder


def check_free_space(folder: str | Path, needed: int, what: str) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OutputError(f"{what} {folder}: about {_mb(needed)} will be written but only {_mb(free)} is free; "
                          "nothing was evaluated. Free some space or choose another folder.")


def estimate_output_bytes(n_pairs: int) -> int:
    return OUTPUT_BYTES_FIXED + OUTPUT_BYTES_PER_PAIR * n_pairs


def estimate_cache_bytes(sources: Iterable[Path | bytes | None]) -> int:
    """Upper bound for the unit-cache entries of these audio sources (as if none were cached yet)."""
    total = 0
    for source in sources:
        if source is None:                 # pre-tokenised units: nothing is cached
            continue
        size = len(source) if isinstance(source, (bytes, bytearray)) else _size(source)
        total += CACHE_BYTES_PER_ENTRY + int(size * CACHE_BYTES_PER_AUDIO_BYTE)
    return total


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0                           # the reader reports missing files with their names


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
