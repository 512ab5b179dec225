"""Accuracies of likelihood pairs, per metric family.

Each pair is credited `correct` ∈ {1, tie_value, 0}. Standard errors follow lm-eval's convention for a
mean of per-item scores: sample std (ddof=1) / sqrt(n). Averages of group accuracies (macro, per-voice
mean) propagate the group standard errors as independent: sqrt(Σ se_g²) / n_groups.

A metric family is `fn(df, grouping) -> (metrics, breakdowns)`: `df` holds one row per pair
(`correct`, `positive_score`, `negative_score` and the reader's meta columns), `grouping` is what the
task file declares (which column names the voice, which columns name one item across voices, which
columns to break accuracy down by). Families live in `METRIC_FAMILIES` (entry-point group
`slmeval.metrics.families`); nothing here knows any benchmark by name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from slmeval.plugins import Registry
from slmeval.task_loader.registry import Grouping

METRIC_FAMILIES: Registry = Registry("metric family", group="slmeval.metrics",
                                      package="slmeval.metrics")
FAMILY_SHAPE = "fn(df: pd.DataFrame, grouping: Grouping) -> (metrics, breakdowns)"   # for error messages


@dataclass(frozen=True)
class Computes:
    """What a metric family computes, declared beside it, so a task's `headline:` is checked when the tasks
    are loaded, before any model or audio work. Metrics named under `voice` / `item` / `breakdown` exist
    only when the task's grouping declares that part. Every `acc*` is higher-is-better except the spreads
    (a spread across voices, such as acc_voice_std, is neither); `*_stderr` and `n_*` are not scores."""
    always: tuple[str, ...]
    voice: tuple[str, ...] = ()
    item: tuple[str, ...] = ()
    breakdown: tuple[str, ...] = ()
    spreads: tuple[str, ...] = ()

    def names(self, grouping: Grouping) -> list[str]:
        return [*self.always, *(self.voice if grouping.voice else ()), *(self.item if grouping.item else ()),
                *(self.breakdown if grouping.breakdown else ())]

    def higher_is_better(self, metric: str) -> bool | None:
        """True for a score; None for a spread, a standard error or a count (nothing to rank by)."""
        if metric in self.spreads or metric.endswith("_stderr") or metric.startswith("n_"):
            return None
        return True


def computes(spec: Computes) -> Callable:
    """Decorator: declare what a metric family computes (a plugin family without it is checked only after
    scoring, against what it returned)."""
    def mark(fn: Callable) -> Callable:
        fn.computes = spec
        return fn
    return mark


# Per-voice metrics (a `grouping.voice` column): shared by the families below.
VOICE_METRICS = ("acc_voice_mean", "acc_voice_mean_stderr", "acc_voice_std", "acc_voice_min", "acc_voice_max",
                 "n_voices")
SPREADS = ("acc_voice_std",)


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


def average_of_groups(acc: pd.Series, se: pd.Series) -> tuple[float, float]:
    return float(acc.mean()), float(math.sqrt(float((se.fillna(0) ** 2).sum())) / len(acc))


def _accuracy(df: pd.DataFrame) -> dict:
    values = df["correct"].to_numpy(dtype=float)
    return {"acc": float(values.mean()), "acc_stderr": mean_stderr(values), "n_pairs": int(len(values))}


def voice_metrics(df: pd.DataFrame, column: str) -> tuple[dict, dict]:
    """Per-voice accuracy, its mean and spread; nothing when the column is not filled in (a single-speaker
    release of a task whose multi-speaker variant names voices). A column the reader does not produce at
    all is a task-file mistake: `require_columns` refuses it."""
    if not df[column].notna().all():
        return {}, {}
    table, acc, se = _group_table(df, column)
    metrics = {}
    metrics["acc_voice_mean"], metrics["acc_voice_mean_stderr"] = average_of_groups(acc, se)
    metrics["acc_voice_std"] = float(acc.std(ddof=1)) if len(acc) > 1 else 0.0
    metrics["acc_voice_min"], metrics["acc_voice_max"] = float(acc.min()), float(acc.max())
    metrics["n_voices"] = int(len(acc))
    return metrics, {column: table}


def _item_metrics(df: pd.DataFrame, columns: list[str]) -> dict:
    """An item (one minimal pair said by several voices) counts only if every voice got it strictly right."""
    all_voices = df.groupby(columns, sort=True)["correct"].apply(lambda s: float((s == 1.0).all()))
    return {"acc_all_voices": float(all_voices.mean()), "acc_all_voices_stderr": mean_stderr(all_voices.to_numpy()),
            "n_minimal_pairs": int(len(all_voices))}


def require_columns(df: pd.DataFrame, grouping: Grouping) -> None:
    wanted = [*grouping.breakdown, *grouping.item, *([grouping.voice] if grouping.voice else [])]
    missing = [c for c in wanted if c not in df]
    if missing:
        raise ValueError(f"the task's grouping names column(s) {missing} that its reader does not produce; "
                         f"columns: {sorted(c for c in df if c != 'correct')}")


@METRIC_FAMILIES.register("pairs")
@computes(Computes(always=("acc", "acc_stderr", "n_pairs"), voice=VOICE_METRICS,
                   item=("acc_all_voices", "acc_all_voices_stderr", "n_minimal_pairs"),
                   breakdown=("acc_macro", "acc_macro_stderr"), spreads=SPREADS))
def pair_metrics(df: pd.DataFrame, grouping: Grouping) -> tuple[dict, dict]:
    """acc over all pairs; + per-group tables and acc_macro (breakdown), acc_all_voices (item), per-voice acc (voice)."""
    require_columns(df, grouping)
    metrics, breakdowns = _accuracy(df), {}
    for i, column in enumerate(grouping.breakdown):
        table, acc, se = _group_table(df, column)
        breakdowns[column] = table
        if i == 0:   # the macro average is over the first breakdown (sBLIMP: phenomenon type)
            metrics["acc_macro"], metrics["acc_macro_stderr"] = average_of_groups(acc, se)
    if grouping.item:
        metrics.update(_item_metrics(df, list(grouping.item)))
    if grouping.voice:
        voice, table = voice_metrics(df, grouping.voice)
        metrics.update(voice)
        breakdowns.update(table)
    return metrics, breakdowns


def check_headlines(configs: list) -> None:
    """Every task's headline (and each `headline_by_protocol` value) is a score its family declares for the
    task's grouping: one error naming the task file and the field, before any scoring."""
    from slmeval.task_loader.registry import TaskError

    for cfg in configs:
        spec = getattr(METRIC_FAMILIES.get(cfg.family), "computes", None)
        if spec is None:         # a plugin family that declares nothing: checked after scoring
            continue
        names = spec.names(cfg.grouping)
        fields = [("headline", cfg.headline), *((f"headline_by_protocol.{p}", m)
                                                for p, m in cfg.headline_by_protocol.items())]
        for field_name, metric in fields:
            if metric not in names or spec.higher_is_better(metric) is not True:
                scores = [n for n in names if spec.higher_is_better(n)]
                why = "not a score to rank by" if metric in names else "not a metric it computes with this grouping"
                raise TaskError(f"task {cfg.name!r} ({cfg.origin}): field {field_name}: {metric!r} is {why} (metric "
                                f"family {cfg.family!r}); a headline is one of: {', '.join(scores)}")


def compute_metrics(family: str, df: pd.DataFrame, grouping: Grouping | None = None) -> tuple[dict, dict]:
    """df: one row per pair with `correct` and the reader's meta columns → (metrics, breakdowns)."""
    if df.empty:
        raise ValueError("no pairs to score")
    out = METRIC_FAMILIES.call(family, df, grouping or Grouping(), shape=FAMILY_SHAPE)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], dict) and isinstance(out[1], dict)):
        raise ValueError(f"metric family {family!r} ({METRIC_FAMILIES.origin(family)}) returned "
                         f"{type(out).__name__}; a metric family returns (metrics: dict, breakdowns: dict)")
    return out
