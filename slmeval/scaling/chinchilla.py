"""Eq. 4 of the SLM scaling paper (Chinchilla approach 3): L(N, D) = E + A/N^α + B/D^β.

Fitted as Hoffmann et al. do: in log space, with E = exp(e), A = exp(a), B = exp(b),

    minimise  Σ_runs Huber_δ( LSE(a − α·log N, b − β·log D, e) − log L )

by L-BFGS from every point of a grid of starts, keeping the best. The gradient is analytic (the
softmax weights of the log-sum-exp times the clipped Huber derivative) and all starts are advanced
together by `optim.batched_lbfgs`. Bootstrap intervals resample runs with replacement (seeded).
"""
from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from slmeval.progress import progress_bar
from slmeval.scaling.optim import batched_lbfgs

PARAMS = ("a", "b", "e", "alpha", "beta")        # order of the optimisation vector


def default_grid() -> np.ndarray:
    """The init grid of the issue: α, β ∈ {0, 0.5, …, 2}; e ∈ {−1, −0.5, …, 1}; a, b ∈ {0, 5, …, 25}."""
    exps = np.arange(0.0, 2.01, 0.5)
    es = np.arange(-1.0, 1.01, 0.5)
    ab = np.arange(0.0, 25.1, 5.0)
    return np.array([(a, b, e, al, be) for a, b, e, al, be in itertools.product(ab, ab, es, exps, exps)])


class HuberLSEObjective:
    """Σ_r w_r · Huber_δ(LSE(a − α log N_r, b − β log D_r, e) − log L_r), batched over problems.

    `weights` is None (every run counts once, all problems share the data) or a (n_sets, R) matrix
    of per-run multiplicities with `problem_set[p]` naming the row problem p uses (bootstrap).
    """

    def __init__(self, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray, delta: float,
                 weights: np.ndarray | None = None, problem_set: np.ndarray | None = None,
                 chunk: int = 512):
        self.log_n, self.log_d, self.log_loss = (np.asarray(v, dtype=np.float64) for v in (log_n, log_d, log_loss))
        self.delta = float(delta)
        self.weights = weights
        self.problem_set = problem_set
        self.chunk = chunk   # starts per block: keeps the (block, R) temporaries in cache

    def __call__(self, x: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = np.empty(len(x))
        g = np.empty_like(x)
        for lo in range(0, len(x), self.chunk):
            sl = slice(lo, lo + self.chunk)
            w = None if self.weights is None else self.weights[self.problem_set[idx[sl]]]
            f[sl], g[sl] = self._block(x[sl], w)
        return f, g

    def _block(self, x: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        # Unshifted log-sum-exp: ~25% fewer passes over the (starts, runs) arrays. Only rows whose
        # terms overflow or all underflow (far outside any sensible fit) are redone in the shifted form.
        a, b, e, alpha, beta = (x[:, i:i + 1] for i in range(5))
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            e1 = np.exp(a - alpha * self.log_n)
            e2 = np.exp(b - beta * self.log_d)
            big_e = np.exp(e)
            s = e1 + e2
            s += big_e
            r = np.log(s)
            r -= self.log_loss
            f, g = self._huber_and_grad(r, s, e1, e2, big_e, w)
        bad = ~np.isfinite(f) | ~np.isfinite(g).all(axis=1)
        if bad.any():
            f[bad], g[bad] = self._block_shifted(x[bad], None if w is None else w[bad])
        return f, g

    def _huber_and_grad(self, r, s, e1, e2, e3, w):
        dh = np.minimum(np.maximum(r, -self.delta), self.delta)
        # Huber_δ(r) = dh·(r − dh/2) with dh = clip(r, −δ, δ): 0.5 r² inside, δ(|r| − δ/2) outside.
        h = r - 0.5 * dh
        h *= dh
        if w is not None:
            h *= w
            dh = dh * w
        t = np.divide(dh, s, out=dh)
        g = np.empty((len(r), 5))
        p1 = t * e1
        p2 = t * e2
        g[:, 0] = p1.sum(axis=1)
        g[:, 1] = p2.sum(axis=1)
        g[:, 2] = (t * e3).sum(axis=1) if e3.shape[1] > 1 else t.sum(axis=1) * e3[:, 0]
        g[:, 3] = -(p1 @ self.log_n)
        g[:, 4] = -(p2 @ self.log_d)
        return h.sum(axis=1), g

    def _block_shifted(self, x: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        a, b, e, alpha, beta = (x[:, i:i + 1] for i in range(5))
        u1 = a - alpha * self.log_n
        u2 = b - beta * self.log_d
        m = np.maximum(np.maximum(u1, u2), e)
        e1, e2, e3 = np.exp(u1 - m), np.exp(u2 - m), np.exp(e - m)
        s = e1 + e2 + e3
        r = m + np.log(s) - self.log_loss
        return self._huber_and_grad(r, s, e1, e2, e3, w)


@dataclass
class ChinchillaFit:
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float
    n_starts: int
    n_at_best: int                      # starts whose objective is within `best_tol` of the best
    n_converged: int
    delta: float
    n_runs: int
    seconds: float
    ftol: float
    gtol: float
    best_tol: str
    ci: dict = field(default_factory=dict)          # name -> [lo, hi]
    ci_level: float | None = None
    bootstrap: int = 0
    bootstrap_rule: str | None = None
    seed: int = 0
    local_optima: list = field(default_factory=list)  # distinct end points, best first
    bootstrap_params: list = field(default_factory=list, repr=False)  # per replicate (E, A, B, alpha, beta)

    @property
    def params(self) -> dict[str, float]:
        return {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta}

    def predict(self, n, d) -> np.ndarray:
        return self.E + self.A / np.asarray(n, float) ** self.alpha + self.B / np.asarray(d, float) ** self.beta

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("bootstrap_params")
        return d


def _to_named(x: np.ndarray) -> dict[str, float]:
    a, b, e, alpha, beta = (float(v) for v in x)
    return {"E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)), "alpha": alpha, "beta": beta}


def _check(n, d, loss) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrs = [np.asarray(v, dtype=np.float64).ravel() for v in (n, d, loss)]
    if not (len(arrs[0]) == len(arrs[1]) == len(arrs[2])):
        raise ValueError(f"N, D and loss must have equal lengths, got {[len(a) for a in arrs]}")
    for name, arr in zip(("N", "D", "loss"), arrs):
        bad = ~np.isfinite(arr) | (arr <= 0)
        if bad.any():
            raise ValueError(f"{name} must be finite and > 0; offending positions {np.flatnonzero(bad)[:10].tolist()}")
    if len(arrs[0]) < 5:
        raise ValueError(f"a 5-parameter fit needs at least 5 runs, got {len(arrs[0])}")
    return arrs[0], arrs[1], arrs[2]


def fit_chinchilla(N, D, loss, *, delta: float = 1e-3, grid: np.ndarray | None = None, bootstrap: int = 0,
                   seed: int = 0, ci: float = 0.95, best_rtol: float = 1e-4, bootstrap_starts: int = 5,
                   max_iter: int = 1000, ftol: float = 1e-10, gtol: float = 1e-7,
                   progress: bool = False) -> ChinchillaFit:
    """Fit L(N, D) = E + A/N^α + B/D^β. `grid`: (S, 5) starts in the order (a, b, e, α, β).

    Bootstrap: each replicate resamples the runs with replacement and is refit from the
    `bootstrap_starts` best distinct optima of the full-data fit; intervals are percentile.
    """
    n, d, y = _check(N, D, loss)
    starts = default_grid() if grid is None else np.asarray(grid, dtype=np.float64)
    if starts.ndim != 2 or starts.shape[1] != 5:
        raise ValueError(f"grid must have shape (S, 5) in the order {PARAMS}, got {starts.shape}")
    t0 = time.perf_counter()
    obj = HuberLSEObjective(np.log(n), np.log(d), np.log(y), delta)
    with progress_bar(f"L(N, D): {len(starts)} starts x {len(n)} runs", len(starts), enabled=progress) as advance:
        res = batched_lbfgs(obj, starts, max_iter=max_iter, ftol=ftol, gtol=gtol, on_done=advance)
    fun = np.where(np.isfinite(res.fun), res.fun, np.inf)
    order = np.argsort(fun, kind="stable")
    best = order[0]
    tol = best_rtol * abs(fun[best]) + 1e-12
    n_at_best = int((fun <= fun[best] + tol).sum())
    optima = _distinct(res.x[order], fun[order])
    fit = ChinchillaFit(**_to_named(res.x[best]), objective=float(fun[best]), n_starts=len(starts),
                        n_at_best=n_at_best, n_converged=int(res.converged.sum()), delta=float(delta),
                        n_runs=len(n), seconds=0.0, ftol=ftol, gtol=gtol, best_tol=f"objective <= best + {best_rtol:g}*|best|",
                        seed=seed, local_optima=[{**_to_named(x), "objective": float(f)} for x, f in optima[:10]])
    if bootstrap > 0:
        starts_b = np.array([x for x, _ in optima[:bootstrap_starts]])
        fit.ci, fit.ci_level, fit.bootstrap_params = _bootstrap(n, d, y, delta, starts_b, bootstrap, seed, ci,
                                          dict(max_iter=max_iter, ftol=ftol, gtol=gtol))
        fit.bootstrap = bootstrap
        fit.bootstrap_rule = (f"{bootstrap} replicates resampling runs with replacement "
                              f"(numpy default_rng({seed})); each refit from the {len(starts_b)} best distinct "
                              f"full-data optima; {ci:.0%} percentile intervals")
    fit.seconds = time.perf_counter() - t0
    return fit


def _distinct(xs: np.ndarray, funs: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Distinct end points (parameters differing by > 1e-3 in any coordinate), in the given order."""
    kept: list[tuple[np.ndarray, float]] = []
    for x, f in zip(xs, funs):
        if not np.isfinite(f):
            continue
        if all(np.abs(x - k).max() > 1e-3 for k, _ in kept):
            kept.append((x, float(f)))
        if len(kept) >= 50:
            break
    return kept


def _bootstrap(n, d, y, delta, starts, n_rep, seed, level, opts) -> tuple[dict, float, list]:
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, len(n), len(n)), minlength=len(n)) for _ in range(n_rep)])
    problem_set = np.repeat(np.arange(n_rep), len(starts))
    obj = HuberLSEObjective(np.log(n), np.log(d), np.log(y), delta, weights=counts.astype(float),
                            problem_set=problem_set)
    res = batched_lbfgs(obj, np.tile(starts, (n_rep, 1)), **opts)
    fun = np.where(np.isfinite(res.fun), res.fun, np.inf).reshape(n_rep, len(starts))
    best = res.x.reshape(n_rep, len(starts), 5)[np.arange(n_rep), fun.argmin(axis=1)]
    named = [_to_named(x) for x in best]
    for p in named:      # allocation exponents per replicate (Eq. 6), so their intervals are genuine
        total = p["alpha"] + p["beta"]
        p["a"], p["b"] = (p["beta"] / total, p["alpha"] / total) if total > 0 else (np.nan, np.nan)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    intervals = {k: [float(v) for v in np.nanpercentile([p[k] for p in named], q)] for k in named[0]}
    return intervals, level, named


# Below this, a direction in parameter space moves no prediction (relative to the best-determined one):
# the data cannot tell those parameters apart (float64 round-off sits near 1e-16; real designs ≥ 1e-5).
IDENTIFIABLE_RTOL = 1e-8


def unidentifiable(N, D, params: dict[str, float], *, rtol: float = IDENTIFIABLE_RTOL) -> list[str]:
    """Parameters of L = E + A/N^α + B/D^β that the runs (N, D) cannot determine at `params`.

    The Jacobian of log L̂ over the runs with respect to (a, b, e, α, β) — with w_k the three terms'
    shares of L̂: (w1, w2, w3, −w1·log N, −w2·log D) — is rank-deficient exactly when a change of
    parameters leaves every prediction unchanged: all runs at one N (A/N^α is then one constant,
    indistinguishable from E), all at one D, or a term so small that its exponent moves nothing.
    Columns are scaled to unit length; a near-null singular vector (σ_min/σ_max < rtol) names the
    parameters it mixes, and a column that is itself ~0 names its own.
    """
    n, d = (np.asarray(v, dtype=np.float64).ravel() for v in (N, D))
    terms = np.stack([params["A"] / n ** params["alpha"], params["B"] / d ** params["beta"],
                      np.full(len(n), params["E"])], axis=1)
    w = terms / terms.sum(axis=1, keepdims=True)
    jac = np.column_stack([w[:, 0], w[:, 1], w[:, 2], -w[:, 0] * np.log(n), -w[:, 1] * np.log(d)])
    names = ("A", "B", "E", "alpha", "beta")
    norms = np.linalg.norm(jac, axis=0)
    if not np.isfinite(jac).all() or norms.max() == 0:
        return list(names)
    dead = norms < rtol * norms.max()
    flagged = {names[i] for i in np.flatnonzero(dead)}
    live = np.flatnonzero(~dead)
    _, sigma, vt = np.linalg.svd(jac[:, live] / norms[live], full_matrices=False)
    for s_k, v in zip(sigma, vt):
        if s_k < rtol * sigma[0] or len(n) < len(live):
            flagged |= {names[live[i]] for i in np.flatnonzero(np.abs(v) > 0.1)}
    return [p for p in ("E", "A", "B", "alpha", "beta") if p in flagged]


def objective_and_gradient(params: np.ndarray, N, D, loss, delta: float) -> tuple[float, np.ndarray]:
    """The objective and analytic gradient at one point (a, b, e, α, β): for tests and checks."""
    n, d, y = _check(N, D, loss)
    f, g = HuberLSEObjective(np.log(n), np.log(d), np.log(y), delta)(np.atleast_2d(params).astype(float), np.arange(1))
    return float(f[0]), g[0]
