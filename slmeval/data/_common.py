"""Helpers shared by the layout readers: audio-file listing, ordering, duplicate checks."""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from slmeval.data.base import DataLayoutError

AUDIO_EXTENSIONS = (".wav", ".flac")
_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """Sort key that orders digit runs by value ("2" before "10"), so integer ids keep their order.

    `re.split` with a capture group alternates text / digits, so equal positions always hold the same
    type and tuples compare without mixing str and int.
    """
    parts = _DIGITS.split(text)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def require_dir(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataLayoutError(f"{path}: does not exist (expected {what})")
    if not path.is_dir():
        raise DataLayoutError(f"{path}: is not a directory (expected {what})")
    return path


def list_audio(folder: Path) -> dict[str, Path]:
    """Map file stem -> path for the .wav/.flac files directly inside `folder` (one scandir call:
    fast on 126k-file folders). Two files with one stem (a.wav and a.flac) are ambiguous: error."""
    found: dict[str, Path] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            stem, dot, ext = entry.name.rpartition(".")
            if not dot or "." + ext.lower() not in AUDIO_EXTENSIONS or not entry.is_file():
                continue
            if stem in found:
                raise DataLayoutError(
                    f"{folder}: two audio files share the stem {stem!r} "
                    f"({found[stem].name} and {entry.name}); keep one")
            found[stem] = Path(entry.path)
    return found


def examples(items: Iterable[str], n: int = 5) -> str:
    """First `n` items (sorted) for an error message, with the total count."""
    items = sorted(items, key=natural_key)
    head = ", ".join(items[:n])
    more = f", ... ({len(items)} in all)" if len(items) > n else ""
    return head + more


def check_unique_ids(ids: list[str], where: str) -> None:
    seen: set[str] = set()
    dups = sorted({i for i in ids if i in seen or seen.add(i)}, key=natural_key)
    if dups:
        raise DataLayoutError(f"{where}: duplicate pair ids: {examples(dups)}")
