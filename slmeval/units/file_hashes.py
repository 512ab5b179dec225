"""sha256 of audio files, remembered across runs by what the file system says of each file.

The unit cache is keyed by the sha256 of each audio file's bytes, so a run whose units are all cached
still read and hashed every file: 2 files a pair, ~27 µs each on a VM's disk — most of the audio path's
cost once the cache is warm (issue 22). A file whose size, modification time, change time, inode and
device are all as they were when its hash was recorded holds the same bytes (the kernel sets the change
time on every write, and no program can set it back), so its recorded hash is reused after one `stat`.

As git's index does for the same problem ("racy git"), a file changed within a few seconds of being
recorded is never trusted: on file systems with coarse timestamps, a second write in the same tick could
keep every field the same. Such files are hashed again (and recorded again, later, when they are older).

The records live in one SQLite file beside the unit cache (`<cache root>/file-hashes.sqlite3`); any
trouble with it (locked for long, damaged, read-only) costs the speed-up, never a result: the files are
then hashed as before.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path

from slmeval.io import default_mode

log = logging.getLogger(__name__)

FILE_NAME = "file-hashes.sqlite3"
RACY_NS = 3_000_000_000     # a file changed less than 3 s before its record is hashed again
_BATCH = 900                # paths per query (SQLite's default limit is 999 parameters)


def _signature(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev


class FileHashes:
    """`sha256_many(paths, read)`: each file's sha256 hex digest, from the records where a file is unchanged."""

    def __init__(self, root: Path | str):
        self.path = Path(root).expanduser() / FILE_NAME

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
                   "ctime_ns INTEGER, inode INTEGER, device INTEGER, recorded_ns INTEGER, sha256 TEXT)")
        return db

    def sha256_many(self, paths: Sequence[str], read: Callable[[int], bytes]) -> list[str]:
        """sha256 of every file in `paths` (absolute paths); `read(i)` gives file i's bytes when its record
        cannot be trusted (and names the file in its error when it cannot be read)."""
        stats: list[os.stat_result | None] = []
        for p in paths:
            try:
                stats.append(os.stat(p))
            except OSError:
                stats.append(None)          # `read` names it
        known = self._records(paths)
        out: list[str] = []
        fresh: list[tuple] = []
        now = time.time_ns()
        for i, (p, st) in enumerate(zip(paths, stats)):
            row = known.get(p)
            if st is not None and row is not None and row[:5] == _signature(st) \
                    and max(st.st_mtime_ns, st.st_ctime_ns) < row[5] - RACY_NS:
                out.append(row[6])
                continue
            digest = hashlib.sha256(read(i)).hexdigest()
            out.append(digest)
            if st is not None:
                fresh.append((p, *_signature(st), now, digest))
        if fresh:
            self._record(fresh)
        return out

    def _records(self, paths: Sequence[str]) -> dict[str, tuple]:
        found: dict[str, tuple] = {}
        if not self.path.exists():
            return found
        try:
            with closing(self._connect()) as db, db:
                unique = list(dict.fromkeys(paths))
                for a in range(0, len(unique), _BATCH):
                    part = unique[a:a + _BATCH]
                    rows = db.execute("SELECT path, size, mtime_ns, ctime_ns, inode, device, recorded_ns, sha256 "
                                      f"FROM files WHERE path IN ({','.join('?' * len(part))})", part)
                    found.update((r[0], r[1:]) for r in rows)
        except sqlite3.Error as err:
            log.info("file hash records %s unusable (%s): hashing every file", self.path, err)
            return {}
        return found

    def _record(self, rows: list[tuple]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists()
            with closing(self._connect()) as db, db:       # one transaction: committed whole, or not at all
                db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            if new:       # SQLite creates it 0644 & ~umask; the project's files follow the umask (0666 & ~umask)
                os.chmod(self.path, default_mode())
        except (sqlite3.Error, OSError) as err:
            log.info("file hash records %s not updated (%s)", self.path, err)
