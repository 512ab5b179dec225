"""Batched L-BFGS: many independent small minimisations advanced in lock-step with numpy.

A scaling-law fit is thousands of 5-parameter problems (one per grid start, or per bootstrap
replicate) over the same few hundred runs. Looping scipy over them spends most of the time in
Python overhead per iteration; here every iteration evaluates the objective of all still-active
problems in one vectorised call, and each problem keeps its own L-BFGS history and step size.
Problems that converge leave the active set, so the cost follows the slowest starts only.

The update is textbook L-BFGS (two-loop recursion, Nocedal & Wright Alg. 7.4) with a backtracking
Armijo line search; curvature pairs with s·y ≤ 0 are skipped, which keeps the implicit inverse
Hessian positive definite.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# fg(x, idx) -> (f, g): x has shape (k, P) holding the problems idx (int array of length k);
# f has shape (k,), g shape (k, P).
BatchedObjective = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class BatchedResult:
    x: np.ndarray            # (S, P) final points
    fun: np.ndarray          # (S,) final objectives
    grad_norm: np.ndarray    # (S,) max-abs gradient at the final point
    n_iter: np.ndarray       # (S,) iterations used
    converged: np.ndarray    # (S,) bool: met gtol / ftol (False: max_iter or line-search failure)
    n_evals: int             # objective evaluations, counted in problem-evaluations / S


def batched_lbfgs(fg: BatchedObjective, x0: np.ndarray, *, memory: int = 10, max_iter: int = 1000,
                  gtol: float = 1e-8, ftol: float = 1e-12, max_backtracks: int = 40,
                  armijo: float = 1e-4, on_done: Callable[[int], None] | None = None) -> BatchedResult:
    """Minimise S independent objectives from the starting points x0 (shape (S, P)).

    `on_done(k)` is called with the number of problems that finished in each iteration (progress).
    Stops a problem when max|g| ≤ gtol, or when the relative decrease of f in an iteration is
    ≤ ftol (the criterion of scipy's L-BFGS-B `ftol`), or when its line search fails to decrease f.
    """
    x = np.array(x0, dtype=np.float64, copy=True)
    n_problems, n_params = x.shape
    all_idx = np.arange(n_problems)
    f, g = fg(x, all_idx)
    evals = 1.0
    s_hist = np.zeros((memory, n_problems, n_params))
    y_hist = np.zeros((memory, n_problems, n_params))
    rho = np.zeros((memory, n_problems))           # 0 marks an empty / skipped pair: it is inert
    head = np.zeros(n_problems, dtype=np.int64)    # next slot to write, per problem
    gamma = np.ones(n_problems)                    # initial inverse-Hessian scale
    n_iter = np.zeros(n_problems, dtype=np.int64)
    converged = np.abs(g).max(axis=1) <= gtol
    done = converged.copy() | ~np.isfinite(f)
    first = np.ones(n_problems, dtype=bool)
    restarted = np.zeros(n_problems, dtype=bool)

    n_done = int(done.sum())
    for _ in range(max_iter):
        if on_done is not None and int(done.sum()) != n_done:
            on_done(int(done.sum()) - n_done)
            n_done = int(done.sum())
        act = all_idx[~done]
        if act.size == 0:
            break
        ga = g[act]
        d = _two_loop(ga, s_hist[:, act], y_hist[:, act], rho[:, act], head[act], gamma[act])
        slope = np.einsum("kp,kp->k", d, ga)
        bad = ~(slope < 0) | ~np.isfinite(slope)
        if bad.any():                              # not a descent direction: restart from -g
            d[bad] = -ga[bad]
            slope[bad] = -np.einsum("kp,kp->k", ga[bad], ga[bad])
            rho[:, act[bad]] = 0.0
        # First step of a problem: scale so the initial move is modest (as scipy does).
        step = np.where(first[act], np.minimum(1.0, 1.0 / np.maximum(np.abs(ga).sum(axis=1), 1e-300)), 1.0)
        x_new = np.empty_like(x[act])
        f_new = np.empty(act.size)
        g_new = np.empty_like(ga)
        pending = np.arange(act.size)
        ok = np.zeros(act.size, dtype=bool)
        for _bt in range(max_backtracks):
            xt = x[act[pending]] + step[pending, None] * d[pending]
            ft, gt = fg(xt, act[pending])
            evals += pending.size / n_problems
            accept = np.isfinite(ft) & (ft <= f[act[pending]] + armijo * step[pending] * slope[pending])
            acc = pending[accept]
            x_new[acc], f_new[acc], g_new[acc] = xt[accept], ft[accept], gt[accept]
            ok[acc] = True
            pending = pending[~accept]
            if pending.size == 0:
                break
            step[pending] *= 0.5
        # A failed line search along an L-BFGS direction (stale curvature after a large jump) gets a
        # second chance from steepest descent with the history cleared; failing that too, the
        # problem stops at its current point.
        fail = act[~ok]
        retry = fail[~restarted[fail]]
        rho[:, retry] = 0.0
        gamma[retry] = 1.0
        first[retry] = True
        restarted[retry] = True
        done[fail[~np.isin(fail, retry)]] = True
        acc = np.flatnonzero(ok)
        ia = act[acc]
        s = x_new[acc] - x[ia]
        y = g_new[acc] - g[ia]
        sy = np.einsum("kp,kp->k", s, y)
        yy = np.einsum("kp,kp->k", y, y)
        good = sy > 1e-12 * np.sqrt(np.einsum("kp,kp->k", s, s) * yy)
        slot = head[ia]
        s_hist[slot, ia] = s
        y_hist[slot, ia] = y
        rho[slot, ia] = np.where(good, 1.0 / np.where(good, sy, 1.0), 0.0)
        gamma[ia] = np.where(good, sy / np.where(good, yy, 1.0), gamma[ia])
        head[ia] = (slot + 1) % memory
        rel_drop = (f[ia] - f_new[acc]) / np.maximum(np.maximum(np.abs(f[ia]), np.abs(f_new[acc])), 1.0)
        x[ia], f[ia], g[ia] = x_new[acc], f_new[acc], g_new[acc]
        first[ia] = False
        restarted[ia] = False
        n_iter[ia] += 1
        hit = (np.abs(g[ia]).max(axis=1) <= gtol) | (rel_drop <= ftol)
        converged[ia[hit]] = True
        done[ia[hit]] = True
    if on_done is not None:
        on_done(n_problems - n_done)
    return BatchedResult(x=x, fun=f, grad_norm=np.abs(g).max(axis=1), n_iter=n_iter,
                         converged=converged, n_evals=int(round(evals)))


def _two_loop(g: np.ndarray, s_hist: np.ndarray, y_hist: np.ndarray, rho: np.ndarray,
              head: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """Return -H·g for every problem, H the L-BFGS inverse-Hessian approximation."""
    memory, k, _ = s_hist.shape
    rows = np.arange(k)
    q = g.copy()
    alphas = np.zeros((memory, k))
    order = [(head - 1 - i) % memory for i in range(memory)]     # newest first
    for i, slot in enumerate(order):
        s, y, r = s_hist[slot, rows], y_hist[slot, rows], rho[slot, rows]
        a = r * np.einsum("kp,kp->k", s, q)
        alphas[i] = a
        q -= a[:, None] * y
    q *= gamma[:, None]
    for i in reversed(range(memory)):
        slot = order[i]
        s, y, r = s_hist[slot, rows], y_hist[slot, rows], rho[slot, rows]
        b = r * np.einsum("kp,kp->k", y, q)
        q += (alphas[i] - b)[:, None] * s
    return -q
