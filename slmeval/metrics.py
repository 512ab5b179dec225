"""Accuracies of likelihood pairs, per metric family.

Each pair is credited `correct` ∈ {1, tie_value, 0}. Standard errors follow lm-eval's convention for a
mean of per-item scores: sample std (ddof=1) / sqrt(n). Averages of group accuracies (macro, per-voice
mean) propagate the group standard errors as independent: sqrt(Σ se_g²) / n_groups.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd


def pair_credit(pos_score: float, neg_score: float, tie_value: float) -> float:
    if pos_score > neg_score:
        return 1.0
    if pos_score < neg_score:
        return 0.0
    return tie_value


def mean_stderr(values: np.ndarray) -> float:
    n = len(values)
    return float(np.std(values, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")


def _group_table(df: pd.DataFrame, column: str) -> tuple[dict, pd.Series, pd.Series]:
    grouped = df.groupby(column, sort=True)["correct"]
    acc, se = grouped.mean(), grouped.apply(lambda s: mean_stderr(s.to_numpy()))
    counts = grouped.size()
    table = {str(k): {"acc": float(acc[k]), "acc_stderr": float(se[k]), "n_pairs": int(counts[k])} for k in acc.index}
    return table, acc, se


def _average_of_groups(acc: pd.Series, se: pd.Series) -> tuple[float, float]:
    return float(acc.mean()), float(math.sqrt(float((se.fillna(0) ** 2).sum())) / len(acc))


def storycloze_metrics(df: pd.DataFrame) -> tuple[dict, dict]:
    """acc over all pairs; with a `speaker` column also per-voice accuracy, its mean and spread."""
    values = df["correct"].to_numpy(dtype=float)
    metrics = {"acc": float(values.mean()), "acc_stderr": mean_stderr(values), "n_pairs": int(len(values))}
    breakdowns: dict = {}
    if "speaker" in df and df["speaker"].notna().all():
        table, acc, se = _group_table(df, "speaker")
        breakdowns["speaker"] = table
        metrics["acc_voice_mean"], metrics["acc_voice_mean_stderr"] = _average_of_groups(acc, se)
        metrics["acc_voice_std"] = float(acc.std(ddof=1)) if len(acc) > 1 else 0.0
        metrics["acc_voice_min"], metrics["acc_voice_max"] = float(acc.min()), float(acc.max())
        metrics["n_voices"] = int(len(acc))
    return metrics, breakdowns


def sblimp_metrics(df: pd.DataFrame) -> tuple[dict, dict]:
    """acc (voice-pairs: the ZeroSpeech number), acc_macro (mean of per-type acc), acc_all_voices."""
    values = df["correct"].to_numpy(dtype=float)
    metrics = {"acc": float(values.mean()), "acc_stderr": mean_stderr(values), "n_pairs": int(len(values))}
    table, acc, se = _group_table(df, "type")
    metrics["acc_macro"], metrics["acc_macro_stderr"] = _average_of_groups(acc, se)
    # A minimal pair (type, subtype, item) counts only if every voice got it strictly right.
    all_voices = df.groupby(["type", "subtype", "item"], sort=True)["correct"].apply(lambda s: float((s == 1.0).all()))
    metrics["acc_all_voices"] = float(all_voices.mean())
    metrics["acc_all_voices_stderr"] = mean_stderr(all_voices.to_numpy())
    metrics["n_minimal_pairs"] = int(len(all_voices))
    return metrics, {"type": table}


def pairs_metrics(df: pd.DataFrame) -> tuple[dict, dict]:
    values = df["correct"].to_numpy(dtype=float)
    return {"acc": float(values.mean()), "acc_stderr": mean_stderr(values), "n_pairs": int(len(values))}, {}


FAMILY_METRICS = {"sblimp": sblimp_metrics, "storycloze": storycloze_metrics, "pairs": pairs_metrics}


def compute_metrics(family: str, df: pd.DataFrame) -> tuple[dict, dict]:
    """df: one row per pair with `correct` and the family's meta columns → (metrics, breakdowns)."""
    if df.empty:
        raise ValueError("no pairs to score")
    return FAMILY_METRICS[family](df)
