"""On-disk unit cache and `tokenize_sources`, the one entry point that turns task audio into units.

Entries are keyed by the sha256 of the audio file's bytes and live under a directory named by the
tokenizer identity's hash, so a second checkpoint evaluated on the same task (same tokenizer) does no
audio work at all. Each entry carries a checksum of its payload and is written to a temp file that is
renamed into place: a run killed mid-write leaves at most an ignored temp file, and a damaged entry
(truncated, bit-flipped) is reported and recomputed, never trusted.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable
from functools import partial
from pathlib import Path

import numpy as np

from slmeval.io import OutputError, atomic_write_bytes
from slmeval.units.base import TokenizerError, UnitTokenizer, identity_key
from slmeval.units.file_hashes import FileHashes

log = logging.getLogger(__name__)

ENTRY_MAGIC = b"SLMEVAL-UNITS-1\n"
SILENT_SUFFIX = ".silent"     # empty marker beside an entry whose audio was near-silent
DIGEST_BYTES = 32


def default_cache_dir() -> Path:
    """$SLMEVAL_CACHE if set, else ~/.cache/slmeval."""
    env = os.environ.get("SLMEVAL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "slmeval"


class UnitCache:
    """Units of one tokenizer (identified by `identity`), stored under `root/units/<identity hash>/`."""

    def __init__(self, root: Path | str, identity: dict):
        self.identity = identity
        self.root = Path(root).expanduser()
        self.key = identity_key(identity)
        self.dir = Path(root).expanduser() / "units" / self.key[:32]
        self._dir = str(self.dir)
        ident_file = self.dir / "identity.json"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            if not ident_file.is_file():  # for humans inspecting the cache; never read back
                atomic_write_bytes(ident_file, (json.dumps(identity, indent=2, sort_keys=True) + "\n").encode(),
                                   fsync=False)
        except OSError as err:    # a full disk says "[Errno 27] File too large": say which entry, and what to do
            raise OutputError(f"cannot write unit cache entry {ident_file}: {err.strerror or err} (use --cache-dir "
                              "elsewhere or --no-cache); no results were written") from None

    def path(self, audio_sha256: str) -> Path:
        return Path(self._path(audio_sha256))

    def _path(self, audio_sha256: str) -> str:
        if not isinstance(audio_sha256, str) or not _SHA256_HEX.fullmatch(audio_sha256):
            raise ValueError(f"not a lowercase sha256 hex digest: {audio_sha256!r}")
        return os.path.join(self._dir, audio_sha256[:2], audio_sha256 + ".units")

    def get_many(self, shas: Iterable[str]) -> dict[str, tuple[np.ndarray, bool]]:
        """{sha: (units, near-silent)} for every sha with a sound entry: one pass over the entries, the
        many-hits case of a warm cache (no Path objects, the arrays read from the bytes directly)."""
        unique = list(dict.fromkeys(shas))
        silent = self._silent_markers({sha[:2] for sha in unique})
        found = {}
        for sha in unique:
            units = self.get(sha)
            if units is not None:
                found[sha] = (units, sha in silent)
        return found

    def _silent_markers(self, shards: set[str]) -> set[str]:
        """The shas with a near-silent marker in these shard folders: one listing per folder, not one
        failed `stat` per entry."""
        marked: set[str] = set()
        for shard in shards:
            try:
                names = os.listdir(os.path.join(self._dir, shard))
            except OSError:
                continue                    # no entry there yet
            marked.update(n[: -len(SILENT_SUFFIX)] for n in names if n.endswith(SILENT_SUFFIX))
        return marked

    def get(self, audio_sha256: str) -> np.ndarray | None:
        path = self._path(audio_sha256)
        try:
            with open(path, "rb") as fh:
                blob = fh.read()
        except FileNotFoundError:
            return None
        problem = self._check(blob)
        if problem is None:
            try:
                units = _read_npy(memoryview(blob)[len(ENTRY_MAGIC) + DIGEST_BYTES:])
            except (ValueError, OSError, EOFError) as err:
                units, problem = None, f"unreadable array ({err})"
            else:
                if units.dtype != np.int64 or units.ndim != 1 or (units.size and units.min() < 0):
                    problem = f"unexpected content (dtype {units.dtype}, shape {units.shape})"
        if problem is not None:
            log.warning("unit cache entry %s is damaged (%s); it will be recomputed", path, problem)
            Path(path).unlink(missing_ok=True)
            return None
        return units

    @staticmethod
    def _check(blob: bytes) -> str | None:
        head = len(ENTRY_MAGIC) + DIGEST_BYTES
        if len(blob) < head or not blob.startswith(ENTRY_MAGIC):
            return "missing header"
        if hashlib.sha256(blob[head:]).digest() != blob[len(ENTRY_MAGIC):head]:
            return "checksum mismatch (truncated or corrupted)"
        return None

    def put(self, audio_sha256: str, units: np.ndarray, *, near_silent: bool = False) -> None:
        path = self.path(audio_sha256)
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(units, dtype=np.int64).reshape(-1), allow_pickle=False)
        payload = buf.getvalue()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if near_silent:   # remembered so that a cache hit warns as the first encoding did
                atomic_write_bytes(path.with_suffix(SILENT_SUFFIX), b"", fsync=False)
            # No fsync: an entry lost to a power cut is recomputed (the checksum catches a torn one).
            atomic_write_bytes(path, ENTRY_MAGIC + hashlib.sha256(payload).digest() + payload, fsync=False)
        except OSError as err:
            raise OutputError(f"cannot write unit cache entry {path}: {err.strerror or err} (use --cache-dir "
                              "elsewhere or --no-cache); no results were written") from None

    def near_silent(self, audio_sha256: str) -> bool:
        return os.path.exists(self._path(audio_sha256)[: -len(".units")] + SILENT_SUFFIX)


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_NPY_INT64 = b"\x93NUMPY\x01\x00"
_NPY_HEAD = re.compile(rb"\{'descr': '<i8', 'fortran_order': False, 'shape': \((\d+),\), \} *\n")


def _read_npy(payload: memoryview) -> np.ndarray:
    """The array `np.save` wrote: a 1-D little-endian int64 array (what `put` writes) straight from its
    header; anything else through `np.load` (the general reader, and its errors)."""
    if bytes(payload[:8]) == _NPY_INT64:
        size = int.from_bytes(payload[8:10], "little")
        head = _NPY_HEAD.fullmatch(bytes(payload[10:10 + size]))
        if head is not None and len(payload) == 10 + size + 8 * int(head.group(1)):
            return np.frombuffer(payload, dtype="<i8", offset=10 + size).astype(np.int64)
    return np.load(io.BytesIO(payload), allow_pickle=False)


def _source_bytes(source: Path | bytes, name: str) -> bytes:
    from slmeval.audio import AudioError

    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    try:
        return Path(source).read_bytes()
    except OSError as err:
        raise AudioError(f"{name}: cannot read audio file ({err})") from err


def _content_hashes(sources: list[Path | bytes], names: list[str], cache: UnitCache | None) -> list[str]:
    """sha256 of every source's bytes. With a cache, a file unchanged since a run recorded its hash is
    not read again (slmeval/units/file_hashes.py: one stat instead of reading and hashing it)."""
    files = [i for i, s in enumerate(sources) if not isinstance(s, (bytes, bytearray))]
    if cache is None or not files:
        return [hashlib.sha256(_source_bytes(s, n)).hexdigest() for s, n in zip(sources, names)]
    out = [hashlib.sha256(s).hexdigest() if isinstance(s, (bytes, bytearray)) else "" for s in sources]
    cwd = os.getcwd()
    paths = [os.path.join(cwd, os.fspath(sources[i])) for i in files]     # absolute: one record per file
    found = FileHashes(cache.root).sha256_many(paths, lambda k: _source_bytes(sources[files[k]], names[files[k]]))
    for i, sha in zip(files, found):
        out[i] = sha
    return out


def _decode(sources: list, names: list[str], i: int) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """(waveform, its conversions): summarised by the caller (a DataLoader worker's log lines would not be)."""
    from slmeval.audio import load_audio

    conversions: list[tuple[str, str]] = []
    return load_audio(_source_bytes(sources[i], names[i]), name=names[i], conversions=conversions), conversions


def _size(source: Path | bytes) -> int:
    if isinstance(source, (bytes, bytearray)):
        return len(source)
    try:
        return os.path.getsize(source)
    except OSError:
        return 0          # reported by name when it is read


def _default_workers(tokenizer: UnitTokenizer) -> int:
    device = str(getattr(tokenizer, "device", "cpu"))
    return 0 if not device.startswith("cuda") else max(0, min(4, (os.cpu_count() or 1) - 1))


def tokenize_sources(sources: list[Path | bytes], names: list[str], tokenizer: UnitTokenizer,
                     cache: UnitCache | None, *, progress: bool = True, batch_size: int = 16,
                     notes: list[str] | None = None, decode_workers: int | None = None
                     ) -> tuple[list[np.ndarray], list[str]]:
    """Units for each source (a file path or encoded audio bytes) and the sha256 of each source's bytes.

    Cached units are reused; only misses are loaded (`slmeval.audio.load_audio`: downmix / resample with
    a logged note) and encoded, `batch_size` waveforms at a time, then stored. Identical contents are
    encoded once. Errors name the offending source via `names`. Near-silent sources (see
    `slmeval.audio.is_near_silent`) are still encoded, and named in a warning appended to `notes`
    (also logged) — on cache hits too.

    Misses are encoded shortest file first (similar lengths share a padded batch) and decoded in
    `decode_workers` DataLoader processes (default: 0 on CPU, up to 4 when the tokenizer runs on a GPU,
    so decoding overlaps with encoding).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from slmeval.audio import NEAR_SILENT_DBFS, is_near_silent, summarise_conversions
    from slmeval.units.batching import decoded

    if len(sources) != len(names):
        raise ValueError(f"tokenize_sources: {len(sources)} sources but {len(names)} names")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if cache is not None and cache.identity != tokenizer.identity:
        raise ValueError("tokenize_sources: the cache was opened for a different tokenizer identity")

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    units_by_sha: dict[str, np.ndarray] = {}
    silent: set[str] = set()
    shas: list[str] = []
    first_index: dict[str, int] = {}
    conversions: list[tuple[str, str]] = []
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task(f"units ({tokenizer.identity.get('kind', '?')})", total=len(sources))
        shas = _content_hashes(sources, names, cache)
        for sha, (units, quiet) in (cache.get_many(shas) if cache is not None else {}).items():
            units_by_sha[sha] = units
            if quiet:
                silent.add(sha)
        for i, sha in enumerate(shas):
            if sha not in units_by_sha:
                first_index.setdefault(sha, i)
        n_hits = sum(1 for s in shas if s in units_by_sha)
        bar.advance(task, n_hits)

        misses = list(first_index.items())
        copies = Counter(shas)
        misses.sort(key=lambda miss: _size(sources[miss[1]]))
        workers = _default_workers(tokenizer) if decode_workers is None else decode_workers
        read = partial(_decode, sources, names)
        for batch in decoded(misses, read, batch_size=batch_size, workers=workers):
            chunk, wavs = [(sha, i) for sha, i, _ in batch], []
            for sha, i, (wav, converted) in batch:
                conversions += converted
                if is_near_silent(wav):
                    silent.add(sha)
                try:
                    wavs.append(tokenizer.check_wave(wav))
                except TokenizerError as err:
                    raise TokenizerError(f"{names[i]}: {err}") from err
            for (sha, _), units in zip(chunk, tokenizer.encode_batch(wavs)):
                units_by_sha[sha] = units
                if cache is not None:
                    cache.put(sha, units, near_silent=sha in silent)
            bar.advance(task, sum(copies[sha] for sha, _ in chunk))
    if silent:
        quiet = [name for name, sha in zip(names, shas) if sha in silent]
        shown = ", ".join(quiet[:10]) + (f", ... ({len(quiet)} in all)" if len(quiet) > 10 else "")
        note = f"{len(quiet)} near-silent audio file(s) (RMS below {NEAR_SILENT_DBFS:g} dBFS; scored anyway): {shown}"
        log.warning("%s", note)
        if notes is not None:
            notes.append(note)
    for line in summarise_conversions(conversions):     # one line per kind, not one per file
        log.info("units: %s", line)
    log.info("units: %d sources, %d unique, %d from cache, %d encoded",
             len(sources), len(set(shas)), len(set(shas)) - len(misses), len(misses))
    return [units_by_sha[s].copy() for s in shas], shas
