"""Unit cache + tokenize_sources: hits run no encoder, identity keys, atomic writes, damaged entries."""
from __future__ import annotations

import hashlib
import logging
import os

import numpy as np
import pytest

from _units_helpers import SENTENCES, CountingTokenizer, speech
from slmeval.audio import AudioError, write_audio
from slmeval.units import (LogMelTokenizer, TokenizerError, UnitCache, default_cache_dir,
                           tokenize_sources)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    paths = []
    for i, text in enumerate(SENTENCES):
        paths.append(root / f"{i}.wav")
        write_audio(paths[-1], speech(text))
    return paths


@pytest.fixture()
def tok():
    return CountingTokenizer(LogMelTokenizer(np.random.default_rng(0).normal(size=(16, 40))))


def test_second_pass_is_served_from_cache(files, tok, tmp_path):
    cache = UnitCache(tmp_path, tok.identity)
    sources = [files[0], files[1], files[0].read_bytes(), files[2]]     # one content twice (path and bytes)
    units, shas = tokenize_sources(sources, ["a", "b", "a-bytes", "c"], tok, cache, progress=False, batch_size=2)
    assert tok.calls == 3                                   # identical content encoded once
    assert shas[0] == shas[2] == hashlib.sha256(files[0].read_bytes()).hexdigest()
    np.testing.assert_array_equal(units[0], units[2])
    for u, f in zip(units, [files[0], files[1], files[0], files[2]]):
        from slmeval.audio import load_audio
        np.testing.assert_array_equal(u, tok.inner.encode(load_audio(f)))

    again = CountingTokenizer(tok.inner)
    units2, shas2 = tokenize_sources(sources, ["a", "b", "a-bytes", "c"], again, UnitCache(tmp_path, tok.identity),
                                     progress=False)
    assert again.calls == 0 and shas2 == shas
    for a, b in zip(units, units2):
        np.testing.assert_array_equal(a, b)


def test_identity_change_is_a_different_cache(files, tmp_path):
    cents = np.random.default_rng(0).normal(size=(16, 40))
    dd = CountingTokenizer(LogMelTokenizer(cents, dedup=True))
    raw = CountingTokenizer(LogMelTokenizer(cents, dedup=False))
    tokenize_sources(files, ["a", "b", "c"], dd, UnitCache(tmp_path, dd.identity), progress=False)
    units, _ = tokenize_sources(files, ["a", "b", "c"], raw, UnitCache(tmp_path, raw.identity), progress=False)
    assert raw.calls == 3 and any(np.any(u[1:] == u[:-1]) for u in units)
    with pytest.raises(ValueError, match="different tokenizer identity"):
        tokenize_sources(files, ["a", "b", "c"], raw, UnitCache(tmp_path, dd.identity), progress=False)


def test_leftover_temp_file_is_ignored(tmp_path):
    cache = UnitCache(tmp_path, {"kind": "test"})
    sha = "ab" * 32
    entry = cache.path(sha)
    entry.parent.mkdir(parents=True)
    (entry.parent / f".{entry.name}.x1y2.tmp").write_bytes(b"half-written garbage")
    assert cache.get(sha) is None
    cache.put(sha, np.array([3, 1, 2]))
    np.testing.assert_array_equal(cache.get(sha), [3, 1, 2])


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_damaged_entry_is_reported_and_recomputed(files, tok, tmp_path, caplog, damage):
    cache = UnitCache(tmp_path, tok.identity)
    (units,), (sha,) = tokenize_sources([files[1]], ["b"], tok, cache, progress=False)
    entry = cache.path(sha)
    blob = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(blob[:-7])
    elif damage == "flip":
        entry.write_bytes(blob[:-3] + bytes([blob[-3] ^ 0x10]) + blob[-2:])
    else:
        entry.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="slmeval.units.cache"):
        (again,), _ = tokenize_sources([files[1]], ["b"], tok, cache, progress=False)
    assert "is damaged" in caplog.text and str(entry) in caplog.text
    assert tok.calls == 2
    np.testing.assert_array_equal(again, units)
    np.testing.assert_array_equal(cache.get(sha), units)       # rewritten intact


def test_interrupted_put_leaves_no_entry(tmp_path, monkeypatch):
    cache = UnitCache(tmp_path, {"kind": "test"})
    sha = "cd" * 32

    def killed(*_args, **_kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        cache.put(sha, np.arange(10))
    monkeypatch.undo()
    assert cache.get(sha) is None
    assert not any(cache.path(sha).parent.iterdir())           # the temp file was removed too


def test_errors_name_the_source(files, tok, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wav")
    with pytest.raises(AudioError, match="broken-item"):
        tokenize_sources([files[0], bad], ["ok", "broken-item"], tok, None, progress=False)
    short = tmp_path / "short.wav"
    write_audio(short, np.zeros(200, np.float32))
    with pytest.raises(TokenizerError, match="^tiny-clip: waveform of 200 samples"):
        tokenize_sources([short], ["tiny-clip"], tok, None, progress=False)
    with pytest.raises(AudioError, match="missing-one"):
        tokenize_sources([tmp_path / "nope.wav"], ["missing-one"], tok, None, progress=False)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SLMEVAL_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SLMEVAL_CACHE")
    assert default_cache_dir() == __import__("pathlib").Path.home() / ".cache" / "slmeval"
