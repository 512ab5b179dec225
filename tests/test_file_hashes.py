"""Audio files' sha256 remembered across runs by their stat (slmeval/units/file_hashes.py): reused only for
a file unchanged since it was recorded (and recorded long enough after its last change), every other file
read and hashed; the records' trouble never changes a hash. Reference: hashlib over the file's bytes."""
from __future__ import annotations

import hashlib
import os
import time

import numpy as np

from slmeval.units import LogMelTokenizer, UnitCache, tokenize_sources
from slmeval.units import file_hashes
from slmeval.units.file_hashes import FileHashes


def _files(folder, n, size=3000, seed=0):
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"f{i}.bin"
        p.write_bytes(rng.bytes(size))
        paths.append(str(p))
    return paths


def _reader(paths, calls):
    def read(i):
        calls.append(i)
        with open(paths[i], "rb") as fh:
            return fh.read()
    return read


def _truth(paths):
    return [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths]


def test_a_file_is_reused_only_when_recorded_well_after_its_last_change(tmp_path, monkeypatch):
    paths = _files(tmp_path, 5)
    memo, calls = FileHashes(tmp_path / "cache"), []
    assert memo.sha256_many(paths, _reader(paths, calls)) == _truth(paths) and calls == [0, 1, 2, 3, 4]
    calls.clear()
    # just written: inside the racy window, so hashed again (a second write in the same tick could hide)
    assert memo.sha256_many(paths, _reader(paths, calls)) == _truth(paths) and calls == [0, 1, 2, 3, 4]
    # recorded 10 s after the files last changed: trusted, nothing read
    real = time.time_ns
    monkeypatch.setattr(file_hashes.time, "time_ns", lambda: real() + 10_000_000_000)
    memo.sha256_many(paths, _reader(paths, []))
    monkeypatch.setattr(file_hashes.time, "time_ns", real)
    calls.clear()
    assert memo.sha256_many(paths, _reader(paths, calls)) == _truth(paths) and calls == []
    # one file rewritten, same size: its mtime / ctime moved, so it alone is read again, and its new hash given
    with open(paths[2], "r+b") as fh:
        fh.write(b"\x00" * 16)
    assert memo.sha256_many(paths, _reader(paths, calls)) == _truth(paths) and calls == [2]
    # another file of the same size moved into a recorded file's place, its mtime set back to the old
    # one: a new inode and change time, so read again (and 2 again: its record is inside the racy window)
    calls.clear()
    (tmp_path / "x").mkdir()
    other = _files(tmp_path / "x", 1, seed=1)[0]
    st = os.stat(paths[3])
    os.replace(other, paths[3])
    os.utime(paths[3], ns=(st.st_atime_ns, st.st_mtime_ns))
    assert memo.sha256_many(paths, _reader(paths, calls)) == _truth(paths) and calls == [2, 3]


def test_damaged_or_unwritable_records_cost_the_speed_up_never_a_hash(tmp_path):
    paths = _files(tmp_path, 3)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / file_hashes.FILE_NAME).write_bytes(b"not a database at all" * 100)
    calls = []
    assert FileHashes(cache).sha256_many(paths, _reader(paths, calls)) == _truth(paths) and calls == [0, 1, 2]
    missing = [str(tmp_path / "gone.bin"), *paths]          # unreadable: `read` names it, as before
    try:
        FileHashes(tmp_path / "fresh").sha256_many(missing, _reader(missing, []))
    except FileNotFoundError as err:
        assert "gone.bin" in str(err)
    else:
        raise AssertionError("a missing file must fail")


def test_tokenize_sources_with_a_warm_cache_reads_no_unchanged_audio(tmp_path, monkeypatch):
    from _units_helpers import SENTENCES, speech
    from slmeval.audio import write_audio
    from slmeval.units import cache as cache_module

    files = []
    for i, text in enumerate(SENTENCES[:3]):
        files.append(tmp_path / f"s{i}.wav")
        write_audio(files[-1], speech(text), sr=16000)
    files.append(files[0])                                   # the same file twice
    tok = LogMelTokenizer(np.random.default_rng(0).normal(size=(16, 40)))
    cache = UnitCache(tmp_path / "cache", tok.identity)
    names = [f.name for f in files]
    real = time.time_ns
    monkeypatch.setattr(file_hashes.time, "time_ns", lambda: real() + 10_000_000_000)   # recorded "later"
    cold = tokenize_sources(files, names, tok, cache, progress=False)
    monkeypatch.setattr(file_hashes.time, "time_ns", real)
    read = []
    original = cache_module._source_bytes
    monkeypatch.setattr(cache_module, "_source_bytes", lambda s, n: (read.append(n), original(s, n))[1])
    warm = tokenize_sources(files, names, tok, cache, progress=False)
    assert read == []                                        # every hash from the records, every unit from the cache
    assert warm[1] == cold[1] == [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    assert all(np.array_equal(a, b) for a, b in zip(warm[0], cold[0]))
    # without a cache nothing is recorded or reused: every file read to hash it (then each content decoded)
    tokenize_sources(files, names, tok, None, progress=False)
    assert read[:4] == names and sorted(read[4:]) == ["s0.wav", "s1.wav", "s2.wav"]
