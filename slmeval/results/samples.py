"""A task's samples (the rows of samples_<task>.jsonl), encoded once, when they are scored.

Per pair, the evaluator used to build a dict, encode it for the resume partial (indented, through a
recursive NaN cleaner), and encode it again for the samples file: most of the harness's per-pair cost
(issue 22). Here each row is formatted straight into its JSONL line, the bytes `io.jsonl_line` writes
for the same dict (its fixed key order, `json`'s float repr and ASCII escapes; anything unusual goes
through `jsonl_line` itself), and those lines are all that is kept: the samples file and the partial
are written from them, never re-encoded. `Samples` still reads as a sequence of dicts (parsed on
access) for exports and tests.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from slmeval.io import _json_default, clean_json, dumps, jsonl_line

if TYPE_CHECKING:
    from slmeval.scoring.batch import ScoreColumns

SAMPLE_KEYS = ("id", "positive_key", "negative_key", "positive_file", "negative_file", "positive_logprob",
               "negative_logprob", "positive_n", "negative_n", "positive_units", "negative_units",
               "positive_score", "negative_score", "correct", "meta")
_LINE = "{" + ", ".join(f'"{k}": %s' for k in SAMPLE_KEYS) + "}\n"
# Compact, `json.dumps`' default separators; the C encoder, built once (json.dumps builds one per call).
_ENCODER = json.JSONEncoder(default=_json_default, allow_nan=False)


def encode_value(value: object) -> str:
    """`value` as `jsonl_line` would write it inside a row (non-finite floats as null)."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is float:
        return float.__repr__(value) if math.isfinite(value) else "null"
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    try:
        return _ENCODER.encode(value)          # no NaN inside: clean_json would change nothing
    except ValueError:
        return _ENCODER.encode(clean_json(value))


# The usual row: text id and keys, finite Python floats, ints: %r of a float is the repr json writes.
_FAST_LINE = ('{"id": %s, "positive_key": %s, "negative_key": %s, "positive_file": %s, "negative_file": %s, '
              '"positive_logprob": %r, "negative_logprob": %r, "positive_n": %d, "negative_n": %d, '
              '"positive_units": %d, "negative_units": %d, "positive_score": %r, "negative_score": %r, '
              '"correct": %r, "meta": %s}\n')
_FLOAT = float


def sample_line(pair_id: object, keys: tuple, files: tuple, logprobs: tuple, ns: tuple, units: tuple,
                scores: tuple, correct: object, meta: object) -> str:
    """The JSONL line of one pair: byte for byte `jsonl_line` of the documented sample dict."""
    numbers = (*logprobs, *scores, correct)
    if (type(pair_id) is str and type(keys[0]) is str and type(keys[1]) is str and type(ns[0]) is int
            and type(ns[1]) is int and all(type(x) is _FLOAT and math.isfinite(x) for x in numbers)):
        return _FAST_LINE % (encode_basestring_ascii(pair_id), encode_basestring_ascii(keys[0]),
                             encode_basestring_ascii(keys[1]), encode_value(files[0]), encode_value(files[1]),
                             logprobs[0], logprobs[1], ns[0], ns[1], units[0], units[1], scores[0], scores[1],
                             correct, encode_value(meta))
    return _LINE % (encode_value(pair_id), encode_value(keys[0]), encode_value(keys[1]), encode_value(files[0]),
                    encode_value(files[1]), encode_value(logprobs[0]), encode_value(logprobs[1]),
                    encode_value(ns[0]), encode_value(ns[1]), encode_value(units[0]), encode_value(units[1]),
                    encode_value(scores[0]), encode_value(scores[1]), encode_value(correct), encode_value(meta))


class Samples(Sequence):
    """The lines of samples_<task>.jsonl (each ending in a newline); reads as a sequence of row dicts."""

    def __init__(self, lines: list[str]):
        self.lines = lines

    @classmethod
    def from_rows(cls, rows: Iterable[dict]) -> "Samples":
        return cls([jsonl_line(r) for r in rows])

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [json.loads(x) for x in self.lines[i]]
        return json.loads(self.lines[i])

    def __iter__(self) -> Iterator[dict]:
        return map(json.loads, self.lines)

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, (Samples, list)) else NotImplemented

    def text(self) -> str:
        return "".join(self.lines)


def as_samples(samples: Samples | Iterable[dict]) -> Samples:
    return samples if isinstance(samples, Samples) else Samples.from_rows(samples)


def partial_text(fingerprint: str, run: dict) -> Iterator[str]:
    """The `--resume` partial file, piece by piece: `{"fingerprint", "run": {..., "samples": [rows]}}`, its
    samples spliced in from their JSONL lines (valid JSON: whitespace may separate array elements), neither
    encoded again nor joined into one string."""
    body = {k: v for k, v in run.items() if k != "samples"}
    head = dumps({"fingerprint": fingerprint, "run": body}).rstrip()        # ...\n  }\n}
    assert head.endswith("}\n}"), head[-20:]
    inner = head[: -len("}\n}")].rstrip()
    sep = "," if body else ""
    yield f'{inner}{sep}\n    "samples": ['
    for k, line in enumerate(as_samples(run["samples"]).lines):
        yield "," + line if k else line
    yield "]\n  }\n}\n"


def metric_frame(metas: Sequence[dict], positive: Sequence[float] | np.ndarray, negative: Sequence[float] | np.ndarray,
                 correct: Sequence[float] | np.ndarray) -> pd.DataFrame:
    """One row per pair, as metric families expect: the meta columns, both scores, the credit — the frame
    `pd.DataFrame([{**meta, "positive_score", "negative_score", "correct"}, ...])` gives (same columns in the
    same order, same dtypes), built column-wise instead of from a dict per pair."""
    frame = pd.DataFrame(list(metas)) if any(metas) else pd.DataFrame(index=pd.RangeIndex(len(metas)))
    order: dict[str, None] = {}
    for keys in dict.fromkeys(tuple(m) for m in metas):     # column order: keys as first seen, row by row
        order.update(dict.fromkeys(keys))
        order.update(dict.fromkeys(("positive_score", "negative_score", "correct")))
    for name, values in (("positive_score", positive), ("negative_score", negative), ("correct", correct)):
        frame[name] = values
    return frame[list(order)] if list(frame.columns) != list(order) else frame


def task_samples(pairs: Sequence, units: Sequence, scores: ScoreColumns, which: Sequence[int] | np.ndarray,
                 how: str, tie_value: float) -> tuple[Samples, pd.DataFrame]:
    """The samples of a scored task and its metric frame. `units`: every utterance's units in pair order
    (pos, neg, pos, ...); `scores`: the distinct sequences' scores, utterance u's being entry `which[u]`;
    `how`: the protocol's score (mean | sum); a pair whose two scores are equal is credited `tie_value`
    (`slmeval.metrics.families.pair_credit`, for every pair at once)."""
    which = np.asarray(which, dtype=np.int64)
    score = scores.scores(how)[which]
    pos, neg = score[0::2], score[1::2]
    credits = np.where(pos > neg, 1.0, np.where(pos < neg, 0.0, float(tie_value)))
    logprob, n_scored = scores.logprob[which].tolist(), scores.n_scored[which].tolist()
    n_units = np.fromiter(map(len, units), np.int64, len(units)).tolist()
    score_list = score.tolist()
    lines = [sample_line(pair.id, (pair.positive.key, pair.negative.key), (pair.positive.file, pair.negative.file),
                         (logprob[2 * i], logprob[2 * i + 1]), (n_scored[2 * i], n_scored[2 * i + 1]),
                         (n_units[2 * i], n_units[2 * i + 1]), (score_list[2 * i], score_list[2 * i + 1]), correct,
                         pair.meta)
             for i, (pair, correct) in enumerate(zip(pairs, credits.tolist()))]
    return Samples(lines), metric_frame([p.meta for p in pairs], pos, neg, credits)
