"""Mixed-modal scaling (Aghajanyan et al. 2023, Eq. 4–6).

With uni-modal laws L_i(N, D) = E_i + A_i/N^α_i + B_i/D^β_i fitted separately, a bi-modal run
with D_i tokens of modality i and D_j of modality j follows

    L(N, D_i, D_j) = [L_i(N, D_i) + L_j(N, D_j)]/2 − C_ij + A_ij/N^α_ij + B_ij/(D_i + D_j)^β_ij.

The two modalities help each other (synergy) where C_ij > A_ij/N^α_ij + B_ij/(D_i+D_j)^β_ij; the
equality is the competition barrier. Its compute-optimal crossing is the smallest budget C = 6·N·D
at which the interaction term, allocated optimally by Eq. 6 (G, a, b from A_ij, B_ij, α_ij, β_ij),
falls to C_ij.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import brentq

from slmeval.scaling.allocation import optimal_allocation
from slmeval.scaling.optim import batched_lbfgs


def unimodal_loss(params: dict, N, D) -> np.ndarray:
    return params["E"] + params["A"] / np.asarray(N, float) ** params["alpha"] + params["B"] / np.asarray(D, float) ** params["beta"]


class _BimodalObjective:
    """Huber_δ on log-loss residuals; parameters (C, a = log A_ij, α_ij, b = log B_ij, β_ij)."""

    def __init__(self, base: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray, delta: float):
        self.base, self.log_n, self.log_d, self.log_loss, self.delta = base, log_n, log_d, log_loss, delta

    def __call__(self, x: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, a, alpha, b, beta = (x[:, i:i + 1] for i in range(5))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            t1 = np.exp(a - alpha * self.log_n)
            t2 = np.exp(b - beta * self.log_d)
            pred = self.base - c + t1 + t2
            r = np.log(pred) - self.log_loss
            dh = np.clip(r, -self.delta, self.delta)
            f = (dh * (r - 0.5 * dh)).sum(axis=1)
            w = dh / pred
            g = np.stack([-w.sum(axis=1), (w * t1).sum(axis=1), -(w * t1) @ self.log_n,
                          (w * t2).sum(axis=1), -(w * t2) @ self.log_d], axis=1)
        f = np.where(np.isfinite(f) & (pred > 0).all(axis=1), f, np.inf)
        return f, g


@dataclass
class MixedModalFit:
    modalities: list
    C: float
    A: float
    alpha: float
    B: float
    beta: float
    objective: float
    delta: float
    n_runs: int
    n_starts: int
    synergy_per_run: list          # C_ij > interaction term, per bi-modal run
    barrier: dict = field(default_factory=dict)   # compute-optimal crossing (N, D, C) or why none

    def interaction(self, N, D_total) -> np.ndarray:
        return self.A / np.asarray(N, float) ** self.alpha + self.B / np.asarray(D_total, float) ** self.beta

    def to_dict(self) -> dict:
        return asdict(self)


def barrier_crossing(C_ij: float, A: float, alpha: float, B: float, beta: float,
                     lo: float = 1e6, hi: float = 1e40) -> dict:
    """Smallest compute at which the optimally allocated interaction term equals C_ij."""
    rule = ("smallest C = 6·N·(D_i+D_j) with A_ij/N^α_ij + B_ij/D^β_ij = C_ij at the Eq. 6 allocation of the "
            "interaction term (N = G·(C/6)^a, D = G⁻¹·(C/6)^b)")
    if alpha <= 0 or beta <= 0:
        return {"rule": rule, "crossed": False, "reason": "α_ij or β_ij ≤ 0: the interaction term does not decay"}
    if C_ij <= 0:
        return {"rule": rule, "crossed": False, "reason": f"C_ij = {C_ij:.4g} ≤ 0: the modalities always compete"}

    def gap(log_c: float) -> float:
        n, d = optimal_allocation(np.exp(log_c), A, B, alpha, beta)
        return float(A / n ** alpha + B / d ** beta - C_ij)

    if gap(np.log(lo)) <= 0:
        n, d = optimal_allocation(lo, A, B, alpha, beta)
        return {"rule": rule, "crossed": True, "C": lo, "N": float(n), "D": float(d),
                "note": f"already in synergy at the smallest budget searched ({lo:.3g} FLOPs)"}
    if gap(np.log(hi)) > 0:
        return {"rule": rule, "crossed": False, "reason": f"not crossed below {hi:.3g} FLOPs"}
    log_c = brentq(gap, np.log(lo), np.log(hi), xtol=1e-10)
    n, d = optimal_allocation(np.exp(log_c), A, B, alpha, beta)
    return {"rule": rule, "crossed": True, "C": float(np.exp(log_c)), "N": float(n), "D": float(d)}


def fit_mixed_modal(N, D_i, D_j, loss, params_i: dict, params_j: dict, *, modalities=("i", "j"),
                    delta: float = 0.03, grid: np.ndarray | None = None) -> MixedModalFit:
    """Fit C_ij, A_ij, α_ij, B_ij, β_ij on bi-modal runs with the uni-modal laws fixed."""
    N, D_i, D_j, L = (np.asarray(v, float).ravel() for v in (N, D_i, D_j, loss))
    for name, arr in (("N", N), (f"D_{modalities[0]}", D_i), (f"D_{modalities[1]}", D_j), ("loss", L)):
        if (~np.isfinite(arr) | (arr <= 0)).any():
            raise ValueError(f"bi-modal runs: {name} must be finite and > 0")
    if len(L) < 5:
        raise ValueError(f"a 5-parameter mixed-modal fit needs at least 5 bi-modal runs, got {len(L)}")
    base = (unimodal_loss(params_i, N, D_i) + unimodal_loss(params_j, N, D_j)) / 2
    d_total = D_i + D_j
    if grid is None:
        grid = np.array(list(itertools.product([0.0, 0.25, 0.5, 1.0], [0.0, 3.0, 6.0, 9.0], [0.1, 0.3, 0.6],
                                               [0.0, 3.0, 6.0, 9.0], [0.1, 0.3, 0.6])))
    obj = _BimodalObjective(base, np.log(N), np.log(d_total), np.log(L), delta)
    f0, _ = obj(grid, np.arange(len(grid)))
    grid = grid[np.isfinite(f0)]
    if len(grid) == 0:
        raise ValueError("no start gives positive predicted losses; check the uni-modal fits and the runs")
    res = batched_lbfgs(obj, grid, ftol=1e-12, gtol=1e-9)
    best = int(np.argmin(res.fun))
    c, a, alpha, b, beta = (float(v) for v in res.x[best])
    fit = MixedModalFit(modalities=list(modalities), C=c, A=float(np.exp(a)), alpha=alpha, B=float(np.exp(b)),
                        beta=beta, objective=float(res.fun[best]), delta=delta, n_runs=len(L), n_starts=len(grid),
                        synergy_per_run=[])
    fit.synergy_per_run = (c > fit.interaction(N, d_total)).tolist()
    fit.barrier = barrier_crossing(c, fit.A, alpha, fit.B, beta)
    return fit
