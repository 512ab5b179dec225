"""The per-sample checks of `verify` (slmeval/results/verify.py `_sample_problems`) over whole columns.

`samples_pass` answers one question: would the sample-by-sample checks find nothing? It answers True
only when every check holds, done with numpy over the task's columns; anything unusual (a field missing
or of another JSON type, a non-finite or huge number, a duplicate id, a score or credit off, a protocol
whose reduction is not float64, lm-eval's credit rule) answers False, and the caller runs the
sample-by-sample checks, which name each problem exactly as before. So the answer never changes what is
checked or said — it only spares the Python loop on the runs that pass, which are nearly all of them.
"""
from __future__ import annotations

import math

import numpy as np

FIELDS = ("id", "positive_key", "negative_key", "positive_score", "negative_score", "correct", "meta")


def _column(samples: list[dict], key: str, types: set[type]) -> np.ndarray | None:
    """The float64 column of `key` when every sample holds one of `types` there (exactly: a bool is not an int)."""
    values = [s[key] for s in samples]
    if not set(map(type, values)) <= types:
        return None
    column = np.asarray(values, dtype=np.float64)
    return column if np.isfinite(column).all() else None


def _isclose(a: np.ndarray, b: np.ndarray, rel_tol: float, abs_tol: float) -> bool:
    """`math.isclose` of every element pair (finite values): the same comparisons in the same doubles."""
    diff = np.abs(b - a)
    return bool(((a == b) | (diff <= np.abs(rel_tol * b)) | (diff <= np.abs(rel_tol * a)) | (diff <= abs_tol)).all())


def samples_pass(samples: list[dict], tie_value: float | None, score_rule: str, score_dtype: str,
                 rel_tol: float, abs_tol: float) -> bool:
    """True when `_sample_problems` would return [] for these samples under a slmeval protocol whose tie
    credit is `tie_value` (None: a credit rule other than slmeval's, never decided here)."""
    if tie_value is None or score_dtype not in ("float64", "float32") or score_rule not in ("mean", "sum"):
        return False
    if type(tie_value) not in (float, int) or not math.isfinite(tie_value):
        return False
    try:
        if set(map(type, samples)) != {dict} or any(f not in s for s in samples for f in FIELDS):
            return False
        if set(type(s["meta"]) for s in samples) != {dict}:
            return False
        ids = [s["id"] for s in samples]
        if len(set(ids)) != len(ids):
            return False
        scores = []
        for side in ("positive", "negative"):
            score = _column(samples, f"{side}_score", {float})
            has_logprob = all(f"{side}_logprob" in s for s in samples)
            logprob = _column(samples, f"{side}_logprob", {float}) if has_logprob else None
            if score is None or logprob is None:
                return False
            present = [f"{side}_n" in s for s in samples]
            if score_rule == "mean" or any(present):
                if not all(present):
                    return False            # a mean needs every count; a sum takes none or only valid ones
                counts = [s[f"{side}_n"] for s in samples]
                if set(map(type, counts)) != {int} or min(counts) < 1:
                    return False
                expected = logprob / np.asarray(counts, dtype=np.float64) if score_rule == "mean" else logprob
            else:
                expected = logprob
            if score_rule == "mean" and max(counts) > 2**53:
                return False                # the division would not be Python's exact int → float one
            if not _isclose(score, expected, rel_tol, abs_tol):
                return False
            scores.append(score)
        correct = _column(samples, "correct", {float, int})
        if correct is None:
            return False
        credit = np.where(scores[0] > scores[1], 1.0, np.where(scores[0] < scores[1], 0.0, tie_value))
        return _isclose(correct, credit, rel_tol, abs_tol)
    except (TypeError, ValueError, OverflowError):   # unhashable ids, odd values: the careful path says what
        return False
