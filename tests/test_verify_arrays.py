"""verify's column-wise pass (slmeval/results/verify_arrays.py) against its sample-by-sample checks, the
code it stands in front of: it may say "all pass" only where those checks find nothing, and on the
samples a run writes it does say so (else it would spare nothing)."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from slmeval.metrics.families import pair_credit
from slmeval.results.verify import ABS_TOL, REL_TOL, SAMPLE_FIELDS, _sample_problems
from slmeval.results.verify_arrays import FIELDS, samples_pass


def _samples(rule: str, tie: float, n: int = 40) -> list[dict]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        row = {"id": f"p{i}", "positive_key": f"p{i}/positive", "negative_key": f"p{i}/negative", "meta": {"t": i % 3}}
        for side in ("positive", "negative"):
            count = int(rng.integers(1, 60))
            lp = float(rng.normal(-3, 1) * count) if i % 5 else -7.25     # every 5th pair a tie
            row.update({f"{side}_logprob": lp, f"{side}_n": count if i % 5 else 29,
                        f"{side}_score": lp / (count if i % 5 else 29) if rule == "mean" else lp})
        row["correct"] = pair_credit(row["positive_score"], row["negative_score"], tie)
        out.append(row)
    return out


CORRUPTIONS = [
    lambda s: s[3].pop("meta"), lambda s: s[3].update(meta=[1]), lambda s: s[4].update(id="p1"),
    lambda s: s[2].update(positive_score=s[2]["positive_score"] * (1 + 1e-6)),
    lambda s: s[2].update(positive_score=s[2]["positive_score"] * (1 + 1e-12)),      # within tolerance: passes
    lambda s: s[2].update(negative_score=float("nan")), lambda s: s[2].update(negative_score=None),
    lambda s: s[2].update(negative_score=True), lambda s: s[2].update(negative_score=int(s[2]["negative_score"])),
    lambda s: s[6].pop("positive_logprob"), lambda s: s[6].update(positive_logprob=float("inf")),
    lambda s: s[6].pop("negative_n"), lambda s: s[6].update(negative_n=0), lambda s: s[6].update(negative_n=3.0),
    lambda s: s[6].update(negative_n=True), lambda s: s[6].update(negative_n=10**30),
    lambda s: s[1].update(correct=1.0 - s[1]["correct"]), lambda s: s[5].update(correct=None),
    lambda s: s[5].update(correct=int(s[5]["correct"]) if s[5]["correct"] in (0.0, 1.0) else s[5]["correct"]),
    lambda s: s[5].update(correct=True), lambda s: s[0].update(id=["unhashable"]), lambda s: s.__setitem__(3, [1]),
    lambda s: s[8].pop("positive_key"), lambda s: [r.pop("positive_n") for r in s],
    lambda s: s[9].update(positive_score=1e308 * 10),
]


@pytest.mark.parametrize("rule", ["mean", "sum"])
@pytest.mark.parametrize("tie", [0.5, 0.0, 1])
@pytest.mark.parametrize("corrupt", [None, *CORRUPTIONS])
def test_column_pass_only_where_the_sample_checks_find_nothing(rule, tie, corrupt):
    samples = _samples(rule, float(tie))
    if corrupt is not None:
        corrupt(samples)
    credit = lambda s: pair_credit(s["positive_score"], s["negative_score"], tie)   # noqa: E731
    try:
        careful = _sample_problems(copy.deepcopy(samples), credit, rule, "float64", "x.jsonl") == []
    except (TypeError, KeyError):         # what the careful path raises, the caller sees from it (never a pass)
        careful = False
    fast = samples_pass(samples, tie, rule, "float64", REL_TOL, ABS_TOL)
    assert fast <= careful                # never "all pass" where a check fails
    if corrupt is None:
        assert fast                       # what a run writes passes without the per-sample loop


def test_what_the_column_pass_leaves_to_the_careful_path():
    samples = _samples("mean", 0.5)
    assert samples_pass(samples, 0.5, "mean", "float64", REL_TOL, ABS_TOL)
    assert not samples_pass(samples, None, "mean", "float64", REL_TOL, ABS_TOL)          # lm-eval's credit rule
    assert not samples_pass(samples, 0.5, "mean", "bfloat16", REL_TOL, ABS_TOL)          # rounded reductions
    assert not samples_pass(samples, math.nan, "mean", "float64", REL_TOL, ABS_TOL)
    assert FIELDS == SAMPLE_FIELDS
