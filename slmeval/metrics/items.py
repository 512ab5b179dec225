"""Metric families for tasks whose items are said by several voices: the ZeroSpeech 2021 way.

The official sLM21 scorers first average each item's pair credits over its voices, then average the
items (zerospeech/zerospeech2021: zerospeech2021/syntactic.py and lexical.py `evaluate_by_pair`, the
`groupby(...).apply(... x['score'].mean())`; the leaderboard number is the mean of that by-pair column:
zerospeech/benchmarks, zerospeech/submissions/sLM21.py `syntactic_scores`, `lexical_scores`). With
unbalanced voices this differs from the mean over voice-pairs, which is kept as `acc_voice_pairs`.

A family is `fn(df, grouping) -> (metrics, breakdowns)`: `df` has one row per voice-pair (`correct`
and the reader's meta columns); `grouping.item` names the columns that identify one item across its
voices, `grouping.breakdown` the columns to tabulate accuracy by (over items, as the official by_type /
by_frequency / by_length tables are; acc_macro averages the first), `grouping.voice` the voice column
(per-voice accuracy over voice-pairs).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from slmeval.metrics.families import (METRIC_FAMILIES, SPREADS, VOICE_METRICS, Computes, average_of_groups,
                                      computes, mean_stderr, require_columns, voice_metrics)
from slmeval.task_loader.registry import Grouping

# What both families below always compute (item-averaged acc first, then the voice-pair and all-voices views).
VOICE_AVERAGED = ("acc", "acc_stderr", "acc_voice_pairs", "acc_voice_pairs_stderr", "acc_all_voices",
                  "acc_all_voices_stderr", "n_minimal_pairs", "n_pairs")


def _mean(values: pd.Series | np.ndarray) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), mean_stderr(values)


def _items(df: pd.DataFrame, grouping: Grouping) -> pd.DataFrame:
    """One row per item: its mean credit over voices, voice count, whether every voice got it right,
    and the breakdown columns (which must not vary across an item's voices)."""
    columns = list(grouping.item)
    if not columns:
        raise ValueError("this metric family averages over each item's voices: the task's grouping must "
                         "name the item columns (grouping: {item: [...]})")
    require_columns(df, grouping)
    grouped = df.groupby(columns, sort=True, dropna=False)
    items = grouped["correct"].agg(score="mean", n_voices="size",
                                   all_right=lambda s: float((s == 1.0).all()))
    for column in grouping.breakdown:
        varies = grouped[column].nunique(dropna=False)
        if (varies > 1).any():
            key = varies[varies > 1].index[0]
            raise ValueError(f"breakdown column {column!r} differs across the voices of item {key!r}; "
                             f"a breakdown over items needs one value per item")
        items[column] = grouped[column].first()
    return items.reset_index(drop=True)


def _table(items: pd.DataFrame, column: str) -> tuple[dict, pd.Series, pd.Series]:
    grouped = items.groupby(column, sort=True)
    acc = grouped["score"].mean()
    se = grouped["score"].apply(lambda s: mean_stderr(s.to_numpy()))
    table = {str(k): {"acc": float(acc[k]), "acc_stderr": float(se[k]), "n_items": int(grouped.size()[k]),
                      "n_pairs": int(grouped["n_voices"].sum()[k])} for k in acc.index}
    return table, acc, se


@METRIC_FAMILIES.register("voice_averaged")
@computes(Computes(always=VOICE_AVERAGED, voice=VOICE_METRICS, breakdown=("acc_macro", "acc_macro_stderr"),
                   spreads=SPREADS))
def voice_averaged_metrics(df: pd.DataFrame, grouping: Grouping) -> tuple[dict, dict]:
    """acc = mean over items of each item's mean over voices (the official sLM21 number)."""
    items = _items(df, grouping)
    metrics: dict = {}
    metrics["acc"], metrics["acc_stderr"] = _mean(items["score"])
    metrics["acc_voice_pairs"], metrics["acc_voice_pairs_stderr"] = _mean(df["correct"])
    metrics["acc_all_voices"], metrics["acc_all_voices_stderr"] = _mean(items["all_right"])
    metrics["n_minimal_pairs"], metrics["n_pairs"] = int(len(items)), int(len(df))
    breakdowns: dict = {}
    for i, column in enumerate(grouping.breakdown):
        breakdowns[column], acc, se = _table(items, column)
        if i == 0:
            metrics["acc_macro"], metrics["acc_macro_stderr"] = average_of_groups(acc, se)
    if grouping.voice:
        voice, table = voice_metrics(df, grouping.voice)
        metrics.update(voice)
        breakdowns.update(table)
    return metrics, breakdowns


@METRIC_FAMILIES.register("zerospeech_lexical")
@computes(Computes(always=(*VOICE_AVERAGED, "acc_in_vocab", "acc_in_vocab_stderr", "n_minimal_pairs_in_vocab"),
                   voice=VOICE_METRICS, spreads=SPREADS))
def zerospeech_lexical_metrics(df: pd.DataFrame, grouping: Grouping) -> tuple[dict, dict]:
    """sWUGGY: the voice-averaged metrics plus `acc_in_vocab`, the leaderboard's second number.

    `acc_in_vocab` is the mean over words whose LibriSpeech frequency band is not "oov" (benchmarks'
    `_score_invocab`, an n-weighted mean of the non-oov bands, which is this mean over their words; it
    is NaN there when a band is empty, never here). Words without a frequency count are in `acc` but in no band (the
    official scorer stops on them; `--export zerospeech` warns). No acc_macro: the
    official lexical scorer has no macro average (tabulate bands with grouping.breakdown)."""
    if "frequency_band" not in df:
        raise ValueError("the zerospeech_lexical family needs the `frequency_band` column the "
                         "zerospeech_lexical reader produces")
    metrics, breakdowns = voice_averaged_metrics(df, grouping)
    metrics.pop("acc_macro", None)
    metrics.pop("acc_macro_stderr", None)
    items = _items(df, replace(grouping, voice=None, breakdown=("frequency_band",)))
    in_vocab = items.loc[items["frequency_band"].notna() & (items["frequency_band"] != "oov"), "score"]
    if len(in_vocab):
        metrics["acc_in_vocab"], metrics["acc_in_vocab_stderr"] = _mean(in_vocab)
    metrics["n_minimal_pairs_in_vocab"] = int(len(in_vocab))
    return metrics, breakdowns

