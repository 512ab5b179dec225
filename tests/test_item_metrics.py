"""Voice-averaged (ZeroSpeech 2021) metric families against hand-checked numbers and a plain-Python
re-statement of the official scorers' arithmetic."""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from slmeval.task_loader.registry import Grouping
from slmeval.metrics.items import voice_averaged_metrics, zerospeech_lexical_metrics

SBLIMP = Grouping(item=("type", "subtype", "item"), breakdown=("type",), voice="voice")
SWUGGY = Grouping(item=("item",), breakdown=("frequency_band",), voice="voice")


def sample_sd_over_sqrt_n(values):
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1) / len(values))


def test_sblimp_unbalanced_voices_hand_checked():
    # A/s item 1: three voices, right only with v1 → 1/3;  A/s item 2: v1 only, right → 1
    # B/t item 1: v1 tie (0.5), v2 right → 3/4
    rows = [("A", "s", "1", "v1", 1.0), ("A", "s", "1", "v2", 0.0), ("A", "s", "1", "v3", 0.0),
            ("A", "s", "2", "v1", 1.0), ("B", "t", "1", "v1", 0.5), ("B", "t", "1", "v2", 1.0)]
    df = pd.DataFrame(rows, columns=["type", "subtype", "item", "voice", "correct"])
    m, b = voice_averaged_metrics(df, SBLIMP)
    assert m["acc"] == pytest.approx(25 / 36)                  # (1/3 + 1 + 3/4) / 3: the official number
    assert m["acc_voice_pairs"] == pytest.approx(3.5 / 6)      # the mean over voice-pairs, kept by name
    assert m["acc_stderr"] == pytest.approx(sample_sd_over_sqrt_n([1 / 3, 1, 0.75]))
    assert m["acc_macro"] == pytest.approx((2 / 3 + 0.75) / 2)  # types over items, as by_type is
    assert b["type"]["A"] == {"acc": pytest.approx(2 / 3), "acc_stderr": pytest.approx(sample_sd_over_sqrt_n([1 / 3, 1])),
                              "n_items": 2, "n_pairs": 4}
    assert m["acc_all_voices"] == pytest.approx(1 / 3)          # only A/s/2
    assert (m["n_minimal_pairs"], m["n_pairs"], m["n_voices"]) == (3, 6, 3)
    assert m["acc_voice_mean"] == pytest.approx((2.5 / 3 + 0.5 + 0.0) / 3)
    assert b["voice"]["v2"]["n_pairs"] == 2


def test_balanced_voices_make_both_numbers_equal():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"type": np.repeat(["A", "B"], 20), "subtype": "s", "item": np.tile(np.repeat(list("abcde"), 4), 2),
                       "voice": np.tile(["v1", "v2", "v3", "v4"], 10), "correct": rng.integers(0, 2, 40).astype(float)})
    m, _ = voice_averaged_metrics(df, SBLIMP)
    assert m["acc"] == pytest.approx(m["acc_voice_pairs"])


def official_like(rows):
    """The official arithmetic, restated: per item, mean credit over its voices; then the mean."""
    by_item = defaultdict(list)
    for *item, credit in rows:
        by_item[tuple(item)].append(credit)
    return sum(sum(v) / len(v) for v in by_item.values()) / len(by_item)


def test_random_unbalanced_against_the_official_arithmetic():
    rng = np.random.default_rng(1)
    rows = [(t, "s", str(i), f"v{v}", float(rng.choice([0.0, 0.5, 1.0])))
            for t in "ABC" for i in range(7) for v in range(4) if rng.random() < 0.6 or v == 0]
    df = pd.DataFrame(rows, columns=["type", "subtype", "item", "voice", "correct"])
    m, _ = voice_averaged_metrics(df, SBLIMP)
    assert m["acc"] == pytest.approx(official_like([(t, s, i, c) for t, s, i, _, c in rows]), abs=1e-12)
    assert m["acc_voice_pairs"] == pytest.approx(sum(r[-1] for r in rows) / len(rows), abs=1e-12)


def test_swuggy_in_vocab_hand_checked():
    # item: band, credits over voices → item score
    # 1 >100 [1, 1] → 1;  2 21-100 [0.5] → .5;  3 6-20 [1, 0] → .5;  4 oov [1, 1] → 1;  5 no count [0, 0] → 0
    rows = [("1", "v1", ">100", 1.0), ("1", "v2", ">100", 1.0), ("2", "v1", "21-100", 0.5),
            ("3", "v1", "6-20", 1.0), ("3", "v2", "6-20", 0.0), ("4", "v1", "oov", 1.0), ("4", "v2", "oov", 1.0),
            ("5", "v1", None, 0.0), ("5", "v2", None, 0.0)]
    df = pd.DataFrame(rows, columns=["item", "voice", "frequency_band", "correct"])
    m, b = zerospeech_lexical_metrics(df, SWUGGY)
    assert m["acc"] == pytest.approx((1 + 0.5 + 0.5 + 1 + 0) / 5)          # lexical "all"
    # lexical "in_vocab": the official n-weighted mean of the non-oov bands (1·1 + .5·1 + .5·1) / 3
    assert m["acc_in_vocab"] == pytest.approx(2 / 3)
    assert m["n_minimal_pairs_in_vocab"] == 3 and m["n_minimal_pairs"] == 5
    assert m["acc_voice_pairs"] == pytest.approx(5.5 / 9)
    assert "acc_macro" not in m
    assert set(b["frequency_band"]) == {">100", "21-100", "6-20", "oov"}   # no band for a word without a count
    assert b["frequency_band"]["oov"] == {"acc": 1.0, "acc_stderr": pytest.approx(float("nan"), nan_ok=True),
                                         "n_items": 1, "n_pairs": 2}


def test_grouping_errors_are_clear():
    df = pd.DataFrame({"item": ["1", "1"], "voice": ["a", "b"], "frequency_band": ["oov", "1-5"], "correct": [1.0, 0.0]})
    with pytest.raises(ValueError, match="breakdown column 'frequency_band' differs across the voices of item"):
        zerospeech_lexical_metrics(df, SWUGGY)
    with pytest.raises(ValueError, match="must name the item columns"):
        voice_averaged_metrics(df, Grouping(item=(), breakdown=(), voice=None))
    with pytest.raises(ValueError, match=r"names column\(s\) \['type'\]"):
        voice_averaged_metrics(df, Grouping(item=("type",), breakdown=(), voice=None))
