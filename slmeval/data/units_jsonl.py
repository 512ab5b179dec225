"""Pre-tokenised pairs: JSONL, one object per line,
`{"id": ..., "positive": [u, ...], "negative": [u, ...], <anything else → meta>}` — no audio.

Units come back as read-only int64 views of one array per block of lines (`Utterance.units`), not as
Python tuples: ~8 bytes a unit instead of ~36, and the lines' Python lists live one block at a time,
so memory stays bounded in the task's size. A file the fast path does not take whole (any error, a
unit beyond int64) is read by the line-by-line path, which gives the same pairs (units as tuples when
they do not fit int64) and the first error in file order, naming file:line and field.
"""
from __future__ import annotations

import json
import re
from itertools import chain
from pathlib import Path

import numpy as np

from slmeval.data._common import natural_key
from slmeval.data.base import READERS, DataLayoutError, Pair, Utterance

try:
    import orjson
except ImportError:          # optional at run time (pyproject installs it): json reads the same values
    orjson = None  # type: ignore[assignment]

EXPECTED = '{"id": ..., "positive": [int, ...], "negative": [int, ...]} per line'


_INT_ONLY = {int}


def _units(value: object, where: str, side: str) -> tuple[int, ...]:
    # One pass each in C for the common case (a non-empty list of plain non-negative ints); anything else
    # takes the item-by-item checks below, which name the offending entry.
    if type(value) is list and value and set(map(type, value)) == _INT_ONLY and min(value) >= 0:
        return tuple(value)
    # bool is an int subclass in Python; true/false in a unit list is a producer bug, not unit 1/0.
    if not isinstance(value, list) or not value:
        raise DataLayoutError(f"{where}: {side!r} must be a non-empty list of unit ids, got "
                              f"{json.dumps(value)[:80]}")
    for i, u in enumerate(value):
        if not isinstance(u, int) or isinstance(u, bool) or u < 0:
            raise DataLayoutError(f"{where}: {side}[{i}] = {json.dumps(u)}; unit ids are non-negative integers")
    return tuple(value)


_BLOCK = 8192      # lines parsed before their unit lists become one array (bounds the lists held at once)
_MISSING = object()


class _Slow(Exception):
    """Anything the fast path does not take as it is: the line-by-line path reads the file instead."""


# orjson reads what json reads into the same values, ~2x faster, and shares the key strings of all lines
# (a "type" key once, not once per line), except: it refuses NaN / Infinity / lone surrogates / 1e400 (json
# reads that block), and it gives an integer beyond 64 bits as a float — so a block whose items hold any
# float, list or dict outside the unit lists is searched for a 19-digit number, and read by json if it has one.
_LONG_INT = re.compile(r"(?<![0-9])[0-9]{19}")
_PLAIN = {str, int, bool, type(None)}
_SIDES = ("positive", "negative")


def _parse(texts: list[str]) -> list:
    if orjson is not None:
        try:
            recs = list(map(orjson.loads, texts))
        except orjson.JSONDecodeError:
            recs = None
        if recs is not None and (set(map(type, recs)) != {dict} or {
                type(v) for r in recs for k, v in r.items() if k not in _SIDES} <= _PLAIN
                or not any(map(_LONG_INT.search, texts))):
            return recs
    return list(map(json.loads, texts))


def _block(texts: list[str], seen: set[str], pairs: list[Pair]) -> None:
    """Pairs of one block of non-blank lines, checked all at once (C loops); `_Slow` on anything off."""
    recs = _parse(texts)
    if set(map(type, recs)) != {dict}:
        raise _Slow
    ids = [r.pop("id", _MISSING) for r in recs]
    pos = [r.pop("positive", _MISSING) for r in recs]
    neg = [r.pop("negative", _MISSING) for r in recs]
    if not set(map(type, ids)) <= {str, int} or "" in ids or set(map(type, chain(pos, neg))) != {list}:
        raise _Slow                         # a missing key (_MISSING), a bool / float / empty id, a side not a list
    pids = list(map(str, ids))
    seen.update(pids)
    if len(seen) != len(pairs) + len(pids):
        raise _Slow                         # a duplicate id
    sides = [s for pn in zip(pos, neg) for s in pn]
    lengths = np.fromiter(map(len, sides), np.int64, len(sides))
    if not len(sides) or int(lengths.min()) == 0 or set(map(type, chain.from_iterable(sides))) != {int}:
        raise _Slow                         # an empty side; bool (an int subclass), float, ... among the units
    try:
        flat = np.fromiter(chain.from_iterable(sides), np.int64, int(lengths.sum()))
    except OverflowError:
        raise _Slow from None               # a unit beyond int64: kept exact as Python ints by the slow path
    if int(flat.min()) < 0:
        raise _Slow
    flat.flags.writeable = False            # views of one buffer: no reader of a pair may change another's units
    ends = np.cumsum(lengths).tolist()
    views = [flat[e - n:e] for e, n in zip(ends, lengths.tolist())]
    pairs += [Pair(id=pid, positive=Utterance(key=f"{pid}/positive", units=views[2 * k]),
                   negative=Utterance(key=f"{pid}/negative", units=views[2 * k + 1]), meta=rec)
              for k, (pid, rec) in enumerate(zip(pids, recs))]


def _read_fast(path: Path) -> list[Pair]:
    pairs: list[Pair] = []
    seen: set[str] = set()
    texts: list[str] = []
    with path.open("rb") as fh:             # bytes split on b"\n" only, as the slow path's split("\n")
        for raw in fh:
            line = raw.decode("utf-8")
            if line.strip():
                texts.append(line)
                if len(texts) == _BLOCK:
                    _block(texts, seen, pairs)
                    texts = []
    if texts:
        _block(texts, seen, pairs)
    if not pairs:
        raise _Slow
    return pairs


@READERS.register("units_jsonl")
def read_units_jsonl(path: Path) -> list[Pair]:
    """<path>: JSONL, one {"id", "positive": [units], "negative": [units]} per line."""
    path = Path(path)
    if not path.is_file():
        raise DataLayoutError(f"{path}: no such file (expected a JSONL file, {EXPECTED})")
    try:
        pairs = _read_fast(path)
    except Exception:   # noqa: BLE001 — whatever it is, the line-by-line path finds it first and names it
        return _read_lines(path)
    pairs.sort(key=lambda p: natural_key(p.id))
    return pairs


def _read_lines(path: Path) -> list[Pair]:
    pairs: list[Pair] = []
    first_line: dict[str, int] = {}
    try:
        lines = path.read_text(encoding="utf-8").split("\n")   # not splitlines: U+2028 may sit inside a JSON string
    except UnicodeDecodeError as err:
        raise DataLayoutError(f"{path}: not UTF-8 text ({err})") from err
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():          # blank lines (e.g. a trailing one) carry no record
            continue
        where = f"{path}:{lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataLayoutError(f"{where}: invalid JSON ({err.msg} at column {err.colno})") from err
        if not isinstance(rec, dict):
            raise DataLayoutError(f"{where}: expected a JSON object, {EXPECTED}")
        missing = [k for k in ("id", "positive", "negative") if k not in rec]
        if missing:
            raise DataLayoutError(f"{where}: missing key(s) {', '.join(missing)} ({EXPECTED})")
        rid = rec.pop("id")
        if not isinstance(rid, (str, int)) or isinstance(rid, bool) or str(rid) == "":
            raise DataLayoutError(f"{where}: id must be a non-empty string or an integer, got {json.dumps(rid)}")
        pid = str(rid)
        if pid in first_line:
            raise DataLayoutError(f"{where}: duplicate id {pid!r} (first on line {first_line[pid]})")
        first_line[pid] = lineno
        pos = _units(rec.pop("positive"), where, "positive")
        neg = _units(rec.pop("negative"), where, "negative")
        pairs.append(Pair(id=pid, positive=Utterance(key=f"{pid}/positive", units=pos),
                          negative=Utterance(key=f"{pid}/negative", units=neg), meta=rec))
    if not pairs:
        raise DataLayoutError(f"{path}: holds no records ({EXPECTED})")
    pairs.sort(key=lambda p: natural_key(p.id))
    return pairs


read_units_jsonl.yields_units = True   # pre-tokenised: a run needs no tokenizer for it (slmeval/run_setup.py)
