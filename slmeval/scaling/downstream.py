"""Downstream metrics against upstream quantities.

* Accuracy vs loss (Fig. 4 of the SLM scaling paper): per metric, an ordinary least-squares line
  metric ~ loss with Pearson r and intervals, fitted on the pre-saturation region only.
* γq (Fig. 2, Table 4): on the envelope of the best metric per FLOP, log Q = log k + γq·log C.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats

ENVELOPE_RULE = ("runs sorted by compute C (ties: higher metric first); a run is on the envelope when its "
                 "metric is strictly greater than every metric at lower or equal compute (running maximum)")
SATURATION_RULES = ("hinge", "none", "max-loss")


def envelope_mask(compute, metric) -> np.ndarray:
    """Boolean mask of the runs on the running-maximum envelope (see ENVELOPE_RULE)."""
    c, q = np.asarray(compute, float), np.asarray(metric, float)
    order = np.lexsort((-q, c))
    mask = np.zeros(len(c), dtype=bool)
    best = -np.inf
    for i in order:
        if q[i] > best:
            mask[i] = True
            best = q[i]
    return mask


@dataclass
class GammaFit:
    gamma: float
    k: float
    n_runs: int
    n_envelope: int
    r2: float
    envelope_rule: str = ENVELOPE_RULE
    ci: dict = field(default_factory=dict)        # "gamma", "k" -> [lo, hi]
    ci_level: float | None = None
    bootstrap: int = 0
    seed: int = 0
    gamma_draws: list | None = field(default=None, repr=False)   # kept for ratio intervals

    def predict(self, compute) -> np.ndarray:
        return self.k * np.asarray(compute, float) ** self.gamma

    def compute_for(self, target: float) -> float:
        """C at which the fitted envelope reaches `target` (an extrapolation)."""
        return float((target / self.k) ** (1.0 / self.gamma))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("gamma_draws")
        return d


def _envelope_fit(c: np.ndarray, q: np.ndarray) -> tuple[float, float, float, int]:
    m = envelope_mask(c, q)
    if m.sum() < 2:
        return np.nan, np.nan, np.nan, int(m.sum())
    res = stats.linregress(np.log(c[m]), np.log(q[m]))
    return float(res.slope), float(np.exp(res.intercept)), float(res.rvalue ** 2), int(m.sum())


def fit_gamma_q(compute, metric, *, bootstrap: int = 0, seed: int = 0, ci: float = 0.95) -> GammaFit:
    """Fit Q = k·C^γq on the running-maximum envelope. Bootstrap: resample runs with replacement,
    recompute the envelope, refit; percentile interval (replicates with < 2 envelope points skipped
    and counted)."""
    c, q = np.asarray(compute, float).ravel(), np.asarray(metric, float).ravel()
    if len(c) != len(q):
        raise ValueError(f"compute and metric differ in length: {len(c)} vs {len(q)}")
    bad = ~np.isfinite(c) | (c <= 0) | ~np.isfinite(q) | (q <= 0)
    if bad.any():
        raise ValueError(f"compute and metric must be finite and > 0 (log fit); offending positions "
                         f"{np.flatnonzero(bad)[:10].tolist()}")
    if len(c) < 2:
        raise ValueError(f"{len(c)} run(s) with this metric: a line needs at least 2")
    gamma, k, r2, n_env = _envelope_fit(c, q)
    if n_env < 2:
        # said of these runs only: one cheap run scoring best is not evidence about compute in general
        raise ValueError(f"none of the {len(c)} runs scores above the run with the least compute, so the "
                         "envelope is a single point (no trend to fit)")
    fit = GammaFit(gamma=gamma, k=k, n_runs=len(c), n_envelope=n_env, r2=r2, seed=seed)
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(bootstrap):
            idx = rng.integers(0, len(c), len(c))
            draws.append(_envelope_fit(c[idx], q[idx])[:2])
        draws = np.array(draws)
        draws = draws[np.isfinite(draws[:, 0])]
        lo_hi = [(1 - ci) / 2 * 100, (1 + ci) / 2 * 100]
        fit.ci = {"gamma": np.percentile(draws[:, 0], lo_hi).tolist(), "k": np.percentile(draws[:, 1], lo_hi).tolist(),
                  "replicates_used": int(len(draws))}
        fit.ci_level, fit.bootstrap, fit.gamma_draws = ci, bootstrap, draws[:, 0].tolist()
    return fit


SATURATION_CAVEAT = ("extrapolated along a power law in the metric; accuracies saturate (a ceiling of 1, "
                     "human / topline performance) and no envelope is known to stay a power law, so these "
                     "compute figures are optimistic extrapolations, not predictions")


def relative_efficiency(fast: GammaFit, slow: GammaFit, targets=(), ci: float = 0.95) -> dict:
    """γ_fast/γ_slow and, per target Q, the compute each fit needs to reach it."""
    out = {"ratio": fast.gamma / slow.gamma, "gamma": [fast.gamma, slow.gamma], "caveat": SATURATION_CAVEAT}
    if fast.gamma_draws and slow.gamma_draws:
        n = min(len(fast.gamma_draws), len(slow.gamma_draws))
        r = np.asarray(fast.gamma_draws[:n]) / np.asarray(slow.gamma_draws[:n])
        out["ratio_ci"] = np.percentile(r, [(1 - ci) / 2 * 100, (1 + ci) / 2 * 100]).tolist()
    out["targets"] = [{"Q": float(t), "C_fast": fast.compute_for(t), "C_slow": slow.compute_for(t)} for t in targets]
    return out


@dataclass
class AccuracyLossFit:
    slope: float
    intercept: float
    pearson_r: float
    pearson_p: float
    n_used: int
    n_saturated: int
    saturation_rule: str
    saturated: list                     # bool per input point
    ci_level: float
    ci: dict = field(default_factory=dict)   # slope / intercept / pearson_r -> [lo, hi]
    breakpoint_loss: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def saturation_mask(loss, metric, rule: str = "hinge", *, max_loss: float | None = None,
                    min_linear: int = 4, min_gain: float = 0.2) -> tuple[np.ndarray, float | None, str]:
    """Which points are saturated (excluded from the linear fit), and the stated rule.

    hinge: try every run loss L_s as a breakpoint of a continuous broken line, constant for loss < L_s
      and linear above (a metric that keeps rising at low loss is not a plateau, so it is not cut).
      The breakpoint minimising the squared error is kept if it lowers the error of one straight
      line by more than `min_gain` (fraction) with at least `min_linear` points on the line;
      otherwise nothing is saturated.
    max-loss: points with loss < `max_loss` are saturated (the user's threshold).
    none: nothing is saturated.
    """
    x, y = np.asarray(loss, float), np.asarray(metric, float)
    if rule == "none":
        return np.zeros(len(x), bool), None, "none: every point is used"
    if rule == "max-loss":
        if max_loss is None:
            raise ValueError("saturation rule 'max-loss' needs a loss threshold (--saturation-loss)")
        return x < max_loss, float(max_loss), f"max-loss: points with loss < {max_loss:g} are saturated"
    if rule != "hinge":
        raise ValueError(f"unknown saturation rule {rule!r}; expected one of {SATURATION_RULES}")
    text = (f"hinge: a continuous broken line, flat (the plateau) below a breakpoint loss and straight above it, "
            f"breakpoint chosen by least squares among run losses; kept only if it cuts the single-line squared "
            f"error by > {min_gain:.0%} with >= {min_linear} points on the line and >= 2 on the plateau")
    sse_line = _sse_line(x, y)
    best = (sse_line, None)
    for cut in np.unique(x):
        plateau = x < cut
        if plateau.sum() < 2 or (~plateau).sum() < min_linear:
            continue
        basis = np.column_stack([np.ones_like(x), np.maximum(x - cut, 0.0)])
        coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
        sse = float(((basis @ coef - y) ** 2).sum())
        if sse < best[0]:
            best = (sse, float(cut))
    if best[1] is None or best[0] > (1 - min_gain) * sse_line:
        return np.zeros(len(x), bool), None, text
    return x < best[1], best[1], text


def _sse_line(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3:
        return 0.0
    coef = np.polyfit(x, y, 1)
    return float(((np.polyval(coef, x) - y) ** 2).sum())


def fit_accuracy_vs_loss(loss, metric, *, rule: str = "hinge", max_loss: float | None = None,
                         ci: float = 0.95) -> AccuracyLossFit:
    x, y = np.asarray(loss, float).ravel(), np.asarray(metric, float).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < len(x):
        raise ValueError(f"loss and metric must be finite; offending positions {np.flatnonzero(~keep)[:10].tolist()}")
    sat, cut, text = saturation_mask(x, y, rule, max_loss=max_loss)
    xu, yu = x[~sat], y[~sat]
    if len(xu) < 3:
        raise ValueError(f"only {len(xu)} pre-saturation points: a line with intervals needs at least 3")
    reg = stats.linregress(xu, yu)
    t = stats.t.ppf((1 + ci) / 2, len(xu) - 2)
    pr = stats.pearsonr(xu, yu)
    r_ci = pr.confidence_interval(confidence_level=ci)
    return AccuracyLossFit(
        slope=float(reg.slope), intercept=float(reg.intercept), pearson_r=float(pr.statistic),
        pearson_p=float(pr.pvalue), n_used=int(len(xu)), n_saturated=int(sat.sum()), saturation_rule=text,
        saturated=sat.tolist(), ci_level=ci, breakpoint_loss=cut,
        ci={"slope": [float(reg.slope - t * reg.stderr), float(reg.slope + t * reg.stderr)],
            "intercept": [float(reg.intercept - t * reg.intercept_stderr), float(reg.intercept + t * reg.intercept_stderr)],
            "pearson_r": [float(r_ci.low), float(r_ci.high)]})
