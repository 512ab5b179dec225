"""Pre-tokenised pairs: JSONL, one object per line,
`{"id": ..., "positive": [u, ...], "negative": [u, ...], <anything else → meta>}` — no audio."""
from __future__ import annotations

import json
from pathlib import Path

from slmeval.data._common import natural_key
from slmeval.data.base import READERS, DataLayoutError, Pair, Utterance

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


@READERS.register("units_jsonl")
def read_units_jsonl(path: Path) -> list[Pair]:
    """<path>: JSONL, one {"id", "positive": [units], "negative": [units]} per line."""
    path = Path(path)
    if not path.is_file():
        raise DataLayoutError(f"{path}: no such file (expected a JSONL file, {EXPECTED})")
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
