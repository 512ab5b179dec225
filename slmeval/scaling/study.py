"""Turn a validated runs table into every analysis `slmeval fit` reports (a JSON-ready dict).

Each analysis that cannot run on the given table (too few runs, no loss column, ...) is recorded
under "skipped" with the reason, so nothing disappears silently.
"""
from __future__ import annotations

import itertools
import logging
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from slmeval.scaling.allocation import allocation_exponents, g_factor, iso_flop_table
from slmeval.scaling.chinchilla import fit_chinchilla, unidentifiable
from slmeval.scaling.downstream import SATURATION_RULES, envelope_mask, fit_accuracy_vs_loss, fit_gamma_q, relative_efficiency
from slmeval.scaling.mixed_modal import fit_mixed_modal
from slmeval.scaling.multiepoch import fit_multi_epoch
from slmeval.scaling.tables import is_single_epoch, is_spread, metric_columns, spread_columns

log = logging.getLogger(__name__)
GRID_RULE = ("every point of α, β ∈ {0, 0.5, …, 2} × e ∈ {−1, −0.5, …, 1} × a, b ∈ {0, 5, …, 25} "
             "(4,500 starts), E = exp(e), A = exp(a), B = exp(b)")
SPREAD_REASON = "a spread across voices or runs (standard deviation / error), not a score"
NO_RUNS_REASON = "no run of this modality has the metric"


@dataclass
class FitOptions:
    delta: float = 1e-3
    bootstrap: int = 200
    seed: int = 0
    ci: float = 0.95
    metrics: list[str] | None = None            # None: every metric column
    saturation: str = "hinge"
    saturation_loss: float | None = None
    compare: list[str] = field(default_factory=list)   # "text/speech": ratio γ_text/γ_speech
    targets: list[float] = field(default_factory=list)  # metric values to extrapolate compute for
    delta_mixed: float = 0.03
    progress: bool = True

    def __post_init__(self) -> None:
        """Each setting checked against what it means, the error naming its option (numpy would fail later,
        in its own words, or not at all: a level of 1.5 gives a percentile of 125)."""
        problems = []
        if not 0 < self.ci < 1:
            problems.append(f"--ci {self.ci:g}: a confidence level is between 0 and 1 (exclusive), e.g. 0.95")
        for name, value in (("--delta", self.delta), ("delta_mixed", self.delta_mixed)):
            if not (math.isfinite(value) and value > 0):
                problems.append(f"{name} {value:g}: the Huber threshold must be a finite number > 0")
        if self.bootstrap < 0:
            problems.append(f"--bootstrap {self.bootstrap}: a number of replicates (0 = no intervals)")
        if self.saturation not in SATURATION_RULES:
            problems.append(f"--saturation {self.saturation!r}: expected one of {', '.join(SATURATION_RULES)}")
        elif self.saturation == "max-loss" and (self.saturation_loss is None or not math.isfinite(self.saturation_loss)):
            problems.append("--saturation max-loss needs a finite --saturation-loss (the loss below which runs saturate)")
        bad = [t for t in self.targets if not (math.isfinite(t) and t > 0)]
        if bad:
            problems.append(f"--target {bad[0]:g}: a metric value to reach must be a finite number > 0")
        if problems:
            raise ValueError("; ".join(problems))


def run_study(df: pd.DataFrame, opts: FitOptions) -> dict:
    out: dict = {"settings": asdict(opts), "n_runs": int(len(df)), "loss_law": {}, "allocation": {},
                 "multi_epoch": {}, "gamma_q": {}, "efficiency": {}, "accuracy_vs_loss": {}, "mixed_modal": {},
                 "skipped": []}
    metrics = opts.metrics if opts.metrics is not None else metric_columns(df)
    for metric in metrics:     # before any fit: a spread, a run descriptor (name, N, loss, ...) or an empty column is no metric
        if metric in df and is_spread(metric):
            raise ValueError(f"--metric {metric!r} is a spread (a standard deviation or standard error), not a "
                             f"score: it is never fitted as one; metrics: {metric_columns(df)}")
        if metric not in metric_columns(df):
            raise ValueError(f"--metric {metric!r}: not a metric column of the runs table "
                             f"({'a run descriptor' if metric in df else 'no such column'}); metric columns: "
                             f"{metric_columns(df)}")
    unimodal = sorted(m for m in df["modality"].unique() if "+" not in m)
    for pair in opts.compare:   # the options are checked before any fit runs
        unknown = [m for m in pair.split("/") if m not in unimodal]
        if unknown:
            raise ValueError(f"--compare {pair!r}: modality {unknown[0]!r} has no uni-modal runs in the table "
                             f"(have {unimodal})")
    for mod in unimodal:
        _loss_analyses(df[df["modality"] == mod], mod, opts, out)
    if opts.metrics is None:
        out["skipped"] += [{"analysis": "gamma_q, accuracy_vs_loss", "metric": c, "reason": SPREAD_REASON}
                           for c in spread_columns(df)]
    for metric in metrics:
        _metric_analyses(df, metric, unimodal, opts, out)
    for mod in sorted(m for m in df["modality"].unique() if "+" in m):
        i, j = mod.split("+")
        if i not in out["loss_law"] or j not in out["loss_law"]:
            out["skipped"].append({"analysis": "mixed_modal", "modality": mod,
                                   "reason": f"needs uni-modal loss fits for both {i} and {j}"})
            continue
        rows = df[(df["modality"] == mod) & df["loss"].notna()]
        try:
            fit = fit_mixed_modal(rows["N"], rows[f"D_{i}"], rows[f"D_{j}"], rows["loss"], out["loss_law"][i],
                                  out["loss_law"][j], modalities=(i, j), delta=opts.delta_mixed)
            out["mixed_modal"][mod] = fit.to_dict()
        except ValueError as exc:
            out["skipped"].append({"analysis": "mixed_modal", "modality": mod, "reason": str(exc)})
    return out


def _loss_analyses(sub: pd.DataFrame, mod: str, opts: FitOptions, out: dict) -> None:
    with_loss = sub[sub["loss"].notna()]
    single = with_loss[is_single_epoch(with_loss)]
    if len(single) < 5:
        out["skipped"].append({"analysis": "loss_law", "modality": mod,
                               "reason": f"{len(single)} single-epoch runs with a loss (need >= 5)"})
        return
    one = [c for c in ("N", "D") if single[c].nunique() < 2]
    if one:     # A, α (or B, β) would be printed with nothing behind them: refuse, saying why
        out["skipped"].append({"analysis": "loss_law", "modality": mod, "reason": (
            f"every single-epoch run has the same {' and '.join(one)}: the law's "
            f"{' and '.join('A, α' if c == 'N' else 'B, β' for c in one)} cannot be told from E (need >= 2 "
            f"distinct values of {' and '.join(one)})")})
        return
    log.info("fitting L(N, D) for %s on %d runs", mod, len(single))
    fit = fit_chinchilla(single["N"], single["D"], single["loss"], delta=opts.delta, bootstrap=opts.bootstrap,
                         seed=opts.seed, ci=opts.ci, progress=opts.progress)
    loose = unidentifiable(single["N"], single["D"], fit.params)
    if loose:   # a direction that moves no prediction: its parameters are not fitted values, whatever the optimiser says
        out["skipped"].append({"analysis": "loss_law", "modality": mod, "reason": (
            f"the runs cannot identify {', '.join(loose)}: at the best fit, changing them moves no run's predicted "
            f"loss (a term negligible for every run, or N / D not varied enough); refused rather than printed"),
            "objective": fit.objective})
        return
    out["loss_law"][mod] = {**fit.to_dict(), "runs": single["name"].tolist(), "grid": GRID_RULE}
    try:
        a, b = allocation_exponents(fit.alpha, fit.beta)
    except ValueError as exc:
        out["skipped"].append({"analysis": "allocation", "modality": mod, "reason": str(exc)})
        return
    lo = math.floor(math.log10(sub["C"].min()))
    hi = math.ceil(math.log10(sub["C"].max())) + 2
    budgets = [10.0 ** k for k in range(lo, hi + 1)]
    out["allocation"][mod] = {"a": a, "b": b, "G": g_factor(fit.A, fit.B, fit.alpha, fit.beta),
                              "a_ci": fit.ci.get("a"), "b_ci": fit.ci.get("b"),
                              "iso_flop": iso_flop_table(budgets, fit.E, fit.A, fit.B, fit.alpha, fit.beta)}
    repeated = with_loss[~is_single_epoch(with_loss)]
    if len(repeated) == 0:
        return
    log.info("fitting R_N*, R_D* for %s on %d runs (%d repeat data)", mod, len(with_loss), len(repeated))
    me = fit_multi_epoch(with_loss["N"], with_loss["D"], with_loss["U"], with_loss["loss"], fit.params,
                         delta=opts.delta, bootstrap=min(opts.bootstrap, 100), seed=opts.seed, ci=opts.ci,
                         base_draws=fit.bootstrap_params or None, progress=opts.progress)
    for w in me.warnings:
        log.warning("%s: %s", mod, w)
    out["multi_epoch"][mod] = me.to_dict()


def _metric_analyses(df: pd.DataFrame, metric: str, unimodal: list[str], opts: FitOptions, out: dict) -> None:
    fits = {}
    for mod in unimodal:
        rows = df[(df["modality"] == mod) & df[metric].notna()]
        key = f"{metric} | {mod}"
        if rows.empty:   # e.g. a speech-only metric (acc_voice_mean) among text runs: nothing to fit, not a failure
            out["skipped"].append({"analysis": "gamma_q, accuracy_vs_loss", "metric": metric, "modality": mod,
                                   "reason": NO_RUNS_REASON})
            continue
        try:
            g = fit_gamma_q(rows["C"], rows[metric], bootstrap=opts.bootstrap, seed=opts.seed, ci=opts.ci)
            fits[mod] = g
            out["gamma_q"][key] = {"metric": metric, "modality": mod, **g.to_dict(),
                                   "envelope_runs": rows["name"][_env(rows, metric)].tolist()}
        except ValueError as exc:
            out["skipped"].append({"analysis": "gamma_q", "metric": metric, "modality": mod, "reason": str(exc)})
        rows = rows[rows["loss"].notna()]
        if rows.empty:
            out["skipped"].append({"analysis": "accuracy_vs_loss", "metric": metric, "modality": mod,
                                   "reason": "no run has both a loss and this metric"})
            continue
        try:
            acc = fit_accuracy_vs_loss(rows["loss"], rows[metric], rule=opts.saturation,
                                       max_loss=opts.saturation_loss, ci=opts.ci)
            out["accuracy_vs_loss"][key] = {"metric": metric, "modality": mod, **acc.to_dict(),
                                            "runs": rows["name"].tolist()}
        except ValueError as exc:
            out["skipped"].append({"analysis": "accuracy_vs_loss", "metric": metric, "modality": mod,
                                   "reason": str(exc)})
    pairs = [c.split("/") for c in opts.compare] if opts.compare else (
        [["text", "speech"]] if {"text", "speech"} <= set(fits) else list(itertools.combinations(sorted(fits), 2)))
    for fast, slow in pairs:
        if fast in fits and slow in fits:
            out["efficiency"][f"{metric} | {fast}/{slow}"] = {
                "metric": metric, "modalities": [fast, slow],
                **relative_efficiency(fits[fast], fits[slow], opts.targets, opts.ci)}


def _env(rows: pd.DataFrame, metric: str) -> np.ndarray:
    return envelope_mask(rows["C"].to_numpy(), rows[metric].to_numpy())
