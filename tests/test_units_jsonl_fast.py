"""units_jsonl's block-wise reader (int64 array views) against its line-by-line path, the code it replaced:
the same pairs, ids, meta and order, and on every bad file the same first error (file:line, field)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from slmeval.data import units_jsonl
from slmeval.data.base import DataLayoutError, Utterance, max_unit, max_unit_of
from slmeval.data.units_jsonl import _read_lines, read_units_jsonl

GOOD = [
    '{"id": "b", "positive": [3, 1, 4], "negative": [1, 5], "type": "x", "voice": 2}\n'
    '\n{"id": 10, "positive": [0], "negative": [9223372036854775807, 0]}\r\n'
    '  \n{"id": "a\u2028b", "positive": [2, 2], "negative": [7], "note": "é\u2028\u2029"}\n\n',
    "".join(json.dumps({"id": f"p{i}", "positive": list(range(i % 7 + 1)), "negative": [i, i + 1], "k": i % 3}) + "\n"
            for i in range(23)),
    # meta values orjson reads otherwise than json (the block is read by json): integers past 64 bits
    # (orjson would give floats), NaN / Infinity, a lone surrogate, 1e400; and one it reads alike (u64 max)
    '{"id": "a", "positive": [1], "negative": [2], "n": 12345678901234567890123}\n'
    '{"id": "b", "positive": [1], "negative": [2], "n": -9223372036854775809, "m": 18446744073709551615}\n',
    '{"id": "a", "positive": [1], "negative": [2], "x": NaN, "y": -Infinity}\n'
    '{"id": "b", "positive": [1], "negative": [2], "s": "\\ud800", "big": 1e400, "deep": {"k": [0.1, -0.0]}}\n',
    '{"id": "a", "positive": [1], "negative": [2], "m": 18446744073709551615, "f": 0.30000000000000004}\n',
]


def _as_plain(pairs):
    return [(p.id, p.positive.key, tuple(map(int, p.positive.units)), p.negative.key,
             tuple(map(int, p.negative.units)), p.meta) for p in pairs]


@pytest.mark.parametrize("orjson", [True, False])
@pytest.mark.parametrize("block", [1, 2, 5, 8192])
@pytest.mark.parametrize("text", GOOD)
def test_block_reader_gives_the_line_readers_pairs(tmp_path, monkeypatch, text, block, orjson):
    monkeypatch.setattr(units_jsonl, "_BLOCK", block)          # block boundaries anywhere, incl. mid-duplicate check
    if not orjson:                                             # optional at run time: json reads every block
        monkeypatch.setattr(units_jsonl, "orjson", None)
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(text.encode())
    got, want = read_units_jsonl(path), _read_lines(path)
    assert _as_plain(got) == _as_plain(want) and got == want  # Utterance equality is by value
    assert repr([p.meta for p in got]) == repr([p.meta for p in want])   # an int stays an int, -0.0 stays -0.0
    for p in got:
        for u in (p.positive.units, p.negative.units):
            assert type(u) is np.ndarray and u.dtype == np.int64 and not u.flags.writeable


BAD = ['{"id": "a", "positive": [1], "negative": [2]}\n{"id": "a", "positive": [1], "negative": [2]}\n',
       '{"id": "a", "positive": [1], "negative": [2]}\n{"id": "b", "positive": [1, true], "negative": [2]}\n',
       '{"id": "a", "positive": [1, -3], "negative": [2]}\n{"id": "a", "positive": [1], "negative": [2]}\n',
       '{"id": "a", "positive": [1.0], "negative": [2]}\n', '{"id": "a", "positive": [], "negative": [2]}\n',
       '{"id": "a", "positive": "12", "negative": [2]}\n', '{"id": "", "positive": [1], "negative": [2]}\n',
       '{"id": true, "positive": [1], "negative": [2]}\n', '{"id": 1.5, "positive": [1], "negative": [2]}\n',
       '{"positive": [1], "negative": [2]}\n', '[1, 2]\n', '{"id": "a", "positive": [1], "negative": [2]\n',
       '\ufeff{"id": "a", "positive": [1], "negative": [2]}\n', '\n \n',
       '{"id": "a", "positive": [1], "negative": [2]}\n{"id": "b", "positive": [1], "negative": [2]} x\n']


@pytest.mark.parametrize("block", [1, 8192])
@pytest.mark.parametrize("text", BAD)
def test_block_reader_gives_the_line_readers_first_error(tmp_path, monkeypatch, text, block):
    monkeypatch.setattr(units_jsonl, "_BLOCK", block)
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(text.encode())
    with pytest.raises(DataLayoutError) as want:
        _read_lines(path)
    with pytest.raises(DataLayoutError) as got:
        read_units_jsonl(path)
    assert str(got.value) == str(want.value) and str(got.value).startswith(str(path))


def test_not_utf8_and_units_beyond_int64(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(b'{"id": "a", "positive": [1], "negative": [2], "n": "\xff"}\n')
    with pytest.raises(DataLayoutError, match=r"not UTF-8 text .*position 52"):
        read_units_jsonl(path)
    path.write_bytes(b'{"id": "a", "positive": [18446744073709551616, 1], "negative": [2]}\n')
    (pair,) = read_units_jsonl(path)       # kept exact (Python ints), for the run's vocabulary check to name
    assert pair.positive.units == (2**64, 1) and max_unit(pair.positive.units) == 2**64


def test_utterances_compare_by_value_whatever_holds_the_units():
    a = Utterance("k", units=np.array([1, 2], np.int64))
    assert a == Utterance("k", units=(1, 2)) == Utterance("k", units=[1, 2])
    assert hash(a) == hash(Utterance("k", units=(1, 2)))
    assert a != Utterance("k", units=(1, 3)) and a != Utterance("j", units=(1, 2)) and a != Utterance("k")
    assert max_unit(np.array([4, 9, 0])) == 9 == max_unit([4, 9, 0]) and max_unit(np.array([], np.int64)) == -1


def test_largest_unit_of_a_task_whatever_holds_the_units():
    arrays = [Utterance("a", units=np.array([3, 70], np.int64)), Utterance("b", units=np.array([], np.int64))]
    assert max_unit_of(arrays) == 70 and max_unit_of(arrays[1:]) == -1 and max_unit_of([]) == -1
    mixed = arrays + [Utterance("c", units=(2**64,)), Utterance("d", audio=b"x")]
    assert max_unit_of(mixed) == 2**64 and max_unit_of([Utterance("d", audio=b"x")]) == -1


def test_reading_pauses_the_cyclic_collector_and_restores_it(tmp_path, monkeypatch):
    import gc

    from slmeval.data import read_pairs, units_jsonl as reader_module

    path = tmp_path / "pairs.jsonl"
    path.write_text(GOOD[1])
    seen = []
    real = reader_module._read_fast
    monkeypatch.setattr(reader_module, "_read_fast", lambda p: (seen.append(gc.isenabled()), real(p))[1])
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            assert len(read_pairs("units_jsonl", path)) == 23
            assert gc.isenabled() is enabled            # as it was found
        finally:
            gc.enable()
    assert seen == [False, False]                       # off while the reader ran
    path.write_text('{"id": "a", "positive": [1], "negative": [2]}\n{"id": "a", "positive": [1], "negative": [2]}\n')
    with pytest.raises(Exception):
        read_pairs("units_jsonl", path)                 # duplicate id: an error, and the collector is back on
    assert gc.isenabled()
