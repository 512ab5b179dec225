"""Metric families against hand-computed numbers."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from slmeval.metrics.families import compute_metrics, mean_stderr, pair_credit
from slmeval.task_loader.registry import Grouping

SBLIMP = Grouping(breakdown=("type",), item=("type", "subtype", "item"))
BY_SPEAKER = Grouping(voice="speaker")


def test_pair_credit_ties():
    assert pair_credit(-1.0, -2.0, 0.5) == 1.0
    assert pair_credit(-2.0, -1.0, 0.5) == 0.0
    assert pair_credit(-1.0, -1.0, 0.5) == 0.5
    assert pair_credit(-1.0, -1.0, 0.0) == 0.0


def test_sblimp_metrics_hand_checked():
    # type A: items 1, 2 × voices v1, v2 → correct 1,1 | 1,0   (acc_A = 3/4)
    # type B: item 1 × voices v1, v2   → correct 0.5, 0        (acc_B = 1/4)
    rows = [("A", "s", 1, "v1", 1.0), ("A", "s", 1, "v2", 1.0), ("A", "s", 2, "v1", 1.0), ("A", "s", 2, "v2", 0.0),
            ("B", "t", 1, "v1", 0.5), ("B", "t", 1, "v2", 0.0)]
    df = pd.DataFrame(rows, columns=["type", "subtype", "item", "voice", "correct"])
    metrics, breakdowns = compute_metrics("pairs", df, SBLIMP)
    assert metrics["acc"] == pytest.approx(3.5 / 6)
    assert metrics["acc_macro"] == pytest.approx((0.75 + 0.25) / 2)
    # minimal pairs: A1 all right, A2 not, B1 (a tie is not "right") not → 1/3
    assert metrics["acc_all_voices"] == pytest.approx(1 / 3)
    assert metrics["n_minimal_pairs"] == 3 and metrics["n_pairs"] == 6
    assert breakdowns["type"]["A"] == {"acc": 0.75, "acc_stderr": pytest.approx(0.25), "n_pairs": 4}
    se_a, se_b = mean_stderr(pd.Series([1, 1, 1, 0.0]).to_numpy()), mean_stderr(pd.Series([0.5, 0.0]).to_numpy())
    assert metrics["acc_macro_stderr"] == pytest.approx(math.sqrt(se_a**2 + se_b**2) / 2)
    # lm-eval's stderr: sample std (ddof=1) / sqrt(n)
    vals = [1, 1, 1, 0, 0.5, 0]
    m = sum(vals) / 6
    assert metrics["acc_stderr"] == pytest.approx(math.sqrt(sum((v - m) ** 2 for v in vals) / 5 / 6))


def test_storycloze_per_speaker_mean_and_spread():
    df = pd.DataFrame({"speaker": ["a", "a", "b", "b", "c", "c"], "correct": [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]})
    metrics, breakdowns = compute_metrics("pairs", df, BY_SPEAKER)
    assert metrics["acc"] == pytest.approx(0.5)
    assert {k: v["acc"] for k, v in breakdowns["speaker"].items()} == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert metrics["acc_voice_mean"] == pytest.approx(0.5)
    assert metrics["acc_voice_std"] == pytest.approx(0.5)          # std of (1, .5, 0), ddof=1
    assert (metrics["acc_voice_min"], metrics["acc_voice_max"], metrics["n_voices"]) == (0.0, 1.0, 3)
    single, none = compute_metrics("pairs", pd.DataFrame({"speaker": [None, None], "correct": [1.0, 0.0]}), BY_SPEAKER)
    assert none == {} and "acc_voice_mean" not in single
