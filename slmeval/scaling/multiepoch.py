"""Multi-epoch (data-constrained) law, Eq. 7–8 (Muennighoff et al. 2023):

    U_D = min(D, U)                         unique tokens seen
    R_D = D/U_D − 1                         repeated epochs
    U_N = min(N_opt(U_D), N)                parameters compute-optimal for U_D (Eq. 6 inverted)
    R_N = N/U_N − 1                         excess parameters
    D'  = U_D + U_D·R_D*·(1 − exp(−R_D/R_D*))
    N'  = U_N + U_N·R_N*·(1 − exp(−R_N/R_N*))
    L   = E + A/N'^α + B/D'^β

E, A, B, α, β are fixed (from the single-epoch fit); only R_N*, R_D* are fitted, with the same
Huber-on-log-loss objective. The surface is often flat along a ridge, so the fit evaluates the
objective on a log grid first: the profile is reported and a warning is raised whenever the
near-optimal region is wide or reaches the grid edge.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import minimize

from slmeval.progress import progress_bar
from slmeval.scaling.allocation import params_for_tokens


def effective_sizes(N, D, U, base: dict, r_n_star, r_d_star) -> tuple[np.ndarray, np.ndarray]:
    """(N', D') for runs (broadcast over leading axes of r_n_star / r_d_star)."""
    n, d = np.asarray(N, float), np.asarray(D, float)
    u = np.where(np.isfinite(np.asarray(U, float)), np.asarray(U, float), d)
    u_d = np.minimum(d, u)
    r_d = d / u_d - 1.0
    u_n = np.minimum(params_for_tokens(u_d, base["A"], base["B"], base["alpha"], base["beta"]), n)
    r_n = n / u_n - 1.0
    rn, rd = np.asarray(r_n_star, float)[..., None], np.asarray(r_d_star, float)[..., None]
    d_eff = u_d + u_d * rd * -np.expm1(-r_d / rd)
    n_eff = u_n + u_n * rn * -np.expm1(-r_n / rn)
    return n_eff, d_eff


def predict_multi_epoch(N, D, U, base: dict, r_n_star, r_d_star) -> np.ndarray:
    n_eff, d_eff = effective_sizes(N, D, U, base, r_n_star, r_d_star)
    return base["E"] + base["A"] / n_eff ** base["alpha"] + base["B"] / d_eff ** base["beta"]


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    dh = np.clip(r, -delta, delta)
    return dh * (r - 0.5 * dh)


@dataclass
class MultiEpochFit:
    R_N_star: float
    R_D_star: float
    objective: float
    delta: float
    n_runs: int
    n_repeated: int                    # runs with R_D > 0
    n_excess_params: int               # runs with R_N > 0
    near_optimal_rule: str
    near_optimal_range: dict           # name -> [lo, hi] over the grid's near-optimal set
    well_determined: dict              # name -> bool
    warnings: list = field(default_factory=list)
    profile: dict = field(default_factory=dict)   # grid axes, 2-D objective, 1-D profiles
    ci: dict = field(default_factory=dict)
    ci_level: float | None = None
    bootstrap: int = 0
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _grid_objective(N, D, U, logL, w, base, delta, rn_axis, rd_axis) -> np.ndarray:
    rn, rd = np.meshgrid(rn_axis, rd_axis, indexing="ij")
    pred = predict_multi_epoch(N, D, U, base, rn.ravel(), rd.ravel())
    obj = (_huber(np.log(pred) - logL, delta) * w).sum(axis=-1)
    return obj.reshape(rn.shape)


def _polish(N, D, U, logL, w, base, delta, x0) -> tuple[np.ndarray, float]:
    def f(x):
        pred = predict_multi_epoch(N, D, U, base, np.exp(x[0]), np.exp(x[1]))
        return float((_huber(np.log(pred) - logL, delta) * w).sum())
    res = minimize(f, x0, method="L-BFGS-B", bounds=[(np.log(1e-3), np.log(1e6))] * 2)
    return res.x, float(res.fun)


def _bootstrap_one(N, D, U, logL, base, delta, axis, rng) -> np.ndarray:
    """One replicate: resample runs (as multiplicities), grid search, polish; returns (R_N*, R_D*)."""
    w = np.bincount(rng.integers(0, len(logL), len(logL)), minlength=len(logL)).astype(float)
    surface = _grid_objective(N, D, U, logL, w, base, delta, axis, axis)
    i, j = np.unravel_index(np.argmin(surface), surface.shape)
    x, _ = _polish(N, D, U, logL, w, base, delta, np.log([axis[i], axis[j]]))
    return np.exp(x)


def fit_multi_epoch(N, D, U, loss, base: dict, *, delta: float = 1e-3, bootstrap: int = 0, seed: int = 0,
                    ci: float = 0.95, grid_lo: float = 0.1, grid_hi: float = 1e4, grid_points: int = 61,
                    near_rtol: float = 0.01, wide_factor: float = 3.0,
                    base_draws: list[dict] | None = None, progress: bool = False) -> MultiEpochFit:
    """Fit R_N*, R_D* with the base law fixed. `base_draws`: bootstrap replicates of the base law
    (from `fit_chinchilla(..., bootstrap=B).bootstrap_params`); replicate b then refits R* against
    base_draws[b], so the intervals carry the uncertainty of the base law too. `near_rtol`: the near-optimal set is the grid points
    with objective ≤ best·(1 + near_rtol); a parameter is poorly determined when that set spans more
    than `wide_factor` (max/min) or touches the grid edge."""
    N, D, U, L = (np.asarray(v, dtype=np.float64).ravel() for v in (N, D, U, loss))
    logL = np.log(L)
    w = np.ones_like(L)
    axis = np.geomspace(grid_lo, grid_hi, grid_points)
    surface = _grid_objective(N, D, U, logL, w, base, delta, axis, axis)
    i, j = np.unravel_index(np.argmin(surface), surface.shape)
    x, obj = _polish(N, D, U, logL, w, base, delta, np.log([axis[i], axis[j]]))
    best = min(obj, float(surface[i, j]))
    near = surface <= surface.min() * (1 + near_rtol) + 1e-15
    ranges, determined, warnings = {}, {}, []
    for name, ax, mask in (("R_N_star", axis, near.any(axis=1)), ("R_D_star", axis, near.any(axis=0))):
        lo, hi = float(ax[mask].min()), float(ax[mask].max())
        edge = bool(mask[0] or mask[-1])
        ranges[name] = [lo, hi]
        determined[name] = bool(hi / lo <= wide_factor and not edge)
        if not determined[name]:
            warnings.append(f"{name} is poorly determined: objective within {near_rtol:.0%} of the best "
                            f"for {name} in [{lo:.3g}, {hi:.3g}]" + (" (reaches the grid edge)" if edge else "")
                            + "; quote the range, not the point estimate")
    U_arr = np.where(np.isfinite(U), U, D)
    u_d = np.minimum(D, U_arr)
    u_n = np.minimum(params_for_tokens(u_d, base["A"], base["B"], base["alpha"], base["beta"]), N)
    fit = MultiEpochFit(
        R_N_star=float(np.exp(x[0])), R_D_star=float(np.exp(x[1])), objective=best, delta=delta,
        n_runs=len(L), n_repeated=int((D / u_d - 1 > 1e-9).sum()), n_excess_params=int((N / u_n - 1 > 1e-9).sum()),
        near_optimal_rule=f"grid points with objective <= best*(1+{near_rtol:g}); poorly determined when "
                          f"max/min > {wide_factor:g} or the set touches the grid edge",
        near_optimal_range=ranges, well_determined=determined, warnings=warnings, seed=seed,
        profile={"axis": axis.tolist(), "objective": surface.tolist(),
                 "profile_R_N_star": surface.min(axis=1).tolist(), "profile_R_D_star": surface.min(axis=0).tolist()})
    if fit.n_repeated == 0:
        fit.warnings.append("no run repeats data (R_D = 0 everywhere): R_D* is not identifiable")
    if fit.n_excess_params == 0:
        fit.warnings.append("no run has N above N_opt(U_D) (R_N = 0 everywhere): R_N* is not identifiable")
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        draws = []
        coarse = axis[::3]
        with progress_bar("multi-epoch bootstrap", bootstrap, enabled=progress) as advance:
            for b in range(bootstrap):
                draws.append(_bootstrap_one(N, D, U, logL, base_draws[b % len(base_draws)] if base_draws else base,
                                            delta, coarse, rng))
                advance(1)
        draws = np.array(draws)
        q = [(1 - ci) / 2 * 100, (1 + ci) / 2 * 100]
        fit.ci = {"R_N_star": np.percentile(draws[:, 0], q).tolist(), "R_D_star": np.percentile(draws[:, 1], q).tolist()}
        fit.ci_level, fit.bootstrap = ci, bootstrap
        fit.ci["rule"] = ("runs resampled with replacement; " + ("each replicate against a bootstrap replicate of "
                          "the base law (base-law uncertainty included)" if base_draws else "base law held fixed"))
    return fit
