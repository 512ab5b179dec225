"""Compute-optimal allocation (Eq. 6, Hoffmann et al.): with C ≈ 6·N·D,

    N_opt(C) = G·(C/6)^a,  D_opt(C) = G⁻¹·(C/6)^b,  G = (αA / (βB))^(1/(α+β)),
    a = β/(α+β),  b = α/(α+β).
"""
from __future__ import annotations

import numpy as np


def allocation_exponents(alpha: float, beta: float) -> tuple[float, float]:
    """(a, b) = (β/(α+β), α/(α+β)): how N_opt and D_opt grow with compute."""
    if alpha <= 0 or beta <= 0:
        raise ValueError(f"allocation needs α > 0 and β > 0, got α={alpha}, β={beta}")
    return beta / (alpha + beta), alpha / (alpha + beta)


def g_factor(A: float, B: float, alpha: float, beta: float) -> float:
    allocation_exponents(alpha, beta)
    return float((alpha * A / (beta * B)) ** (1.0 / (alpha + beta)))


def optimal_allocation(compute, A: float, B: float, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """(N_opt, D_opt) at FLOP budget(s) C; N_opt·D_opt = C/6 exactly."""
    a, b = allocation_exponents(alpha, beta)
    g = g_factor(A, B, alpha, beta)
    c6 = np.asarray(compute, dtype=np.float64) / 6.0
    return g * c6 ** a, c6 ** b / g


def optimal_loss(compute, E: float, A: float, B: float, alpha: float, beta: float) -> np.ndarray:
    """L(N_opt(C), D_opt(C)): the compute-optimal frontier of the fitted law."""
    n, d = optimal_allocation(compute, A, B, alpha, beta)
    return E + A / n ** alpha + B / d ** beta


def params_for_tokens(tokens, A: float, B: float, alpha: float, beta: float) -> np.ndarray:
    """N_opt for the budget whose D_opt equals `tokens` (Eq. 6 inverted: U_N of the multi-epoch law).

    D_opt = G⁻¹(C/6)^b  ⇒  C/6 = (G·D)^(1/b)  ⇒  N_opt = G·(G·D)^(a/b), a/b = β/α.
    """
    a, b = allocation_exponents(alpha, beta)
    g = g_factor(A, B, alpha, beta)
    return g * (g * np.asarray(tokens, dtype=np.float64)) ** (a / b)


def iso_flop_table(compute_budgets, E: float, A: float, B: float, alpha: float, beta: float,
                   n_points: int = 25, span: float = 10.0) -> list[dict]:
    """For each budget: the optimum, and the loss on a log grid of N from N_opt/span to N_opt·span
    with D = C/(6N) (the curves of an iso-FLOP plot)."""
    rows = []
    for c in np.atleast_1d(np.asarray(compute_budgets, dtype=np.float64)):
        n_opt, d_opt = optimal_allocation(c, A, B, alpha, beta)
        ns = np.geomspace(n_opt / span, n_opt * span, n_points)
        ds = c / (6.0 * ns)
        rows.append({"C": float(c), "N_opt": float(n_opt), "D_opt": float(d_opt),
                     "tokens_per_param": float(d_opt / n_opt),
                     "L_opt": float(E + A / n_opt ** alpha + B / d_opt ** beta),
                     "curve": {"N": ns.tolist(), "D": ds.tolist(),
                               "loss": (E + A / ns ** alpha + B / ds ** beta).tolist()}})
    return rows
