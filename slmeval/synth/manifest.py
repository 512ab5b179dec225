"""manifest.jsonl: one line per synthesised file saying exactly how it was made.

A line: file, item, role, task, text, voice, voice_dir, backend, model, model_hash, version, options,
seed (the run's --seed), call_seed (what the sampler was seeded with; null for deterministic
backends), batch (the files generated in the same call; sampling noise is shared within a call),
voice_hash (Bark presets), sample_rate, frames, duration (seconds), created (UTC).

Writers append one line per file as soon as the file is on disk (crash-safe: a half-written last line
is reported and its file regenerated on the next run). Shard i of n writes `manifest.<i>-of-<n>.jsonl`,
an unsharded run `manifest.jsonl`. `read_manifest` merges every part (the newest entry per file
wins); `merge_manifest` rewrites that merge, sorted by file, into `manifest.jsonl` atomically.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import soundfile as sf

from slmeval.synth.layout import write_text_atomic

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
# The fields that define what was asked for: a file is reused only when all of them match.
REQUEST_KEYS = ("file", "item", "role", "task", "text", "voice", "backend", "model_hash", "options", "seed")


def part_name(index: int, count: int) -> str:
    return MANIFEST if count == 1 else f"manifest.{index}-of-{count}.jsonl"


def manifest_parts(out: Path) -> list[Path]:
    parts = sorted(out.glob("manifest.*-of-*.jsonl"))
    return ([out / MANIFEST] if (out / MANIFEST).is_file() else []) + parts


def read_manifest(out: str | Path) -> dict[str, dict]:
    """file → entry over all manifest parts in `out`; unreadable lines are logged (their files get redone)."""
    merged: dict[str, dict] = {}
    for part in manifest_parts(Path(out)):
        with part.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    file = entry["file"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    log.warning("%s:%d: unreadable manifest line ignored (its file will be regenerated)", part, n)
                    continue
                old = merged.get(file)
                if old is None or str(entry.get("created", "")) >= str(old.get("created", "")):
                    merged[file] = entry
    return merged


def request_matches(entry: dict | None, request: dict) -> bool:
    return entry is not None and all(entry.get(k) == request.get(k) for k in REQUEST_KEYS)


def audio_frames(path: Path) -> int:
    """Frames in a readable audio file, 0 when it is missing or unreadable."""
    try:
        return int(sf.info(str(path)).frames)
    except (sf.LibsndfileError, RuntimeError, OSError):
        return 0


def is_done(out: Path, request: dict, entry: dict | None) -> bool:
    """Written and valid: soundfile opens it with frames > 0 and its manifest line matches the request."""
    return request_matches(entry, request) and audio_frames(out / request["file"]) > 0


class ManifestWriter:
    """Appends entries to one manifest part, flushed and fsynced per batch."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # A killed run can leave a last line without its newline; start on a fresh line so the
        # first new entry is not glued to that fragment.
        torn = path.is_file() and path.stat().st_size > 0 and not _ends_with_newline(path)
        self._fh = path.open("a", encoding="utf-8")
        if torn:
            self._fh.write("\n")

    def write(self, entries: list[dict]) -> None:
        for entry in entries:
            self._fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "ManifestWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def merge_manifest(out: str | Path) -> int:
    """Rewrite the merge of all parts into manifest.jsonl (sorted by file); the parts are kept. → #entries."""
    out = Path(out)
    merged = read_manifest(out)
    lines = [json.dumps(merged[f], ensure_ascii=False, sort_keys=True) + "\n" for f in sorted(merged)]
    write_text_atomic(out / MANIFEST, "".join(lines))
    return len(lines)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
