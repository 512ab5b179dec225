"""Synthetic runs drawn from the published laws (Cuervo & Marxer 2024 Table 4–5; Muennighoff et al.
2023), with seeded noise: the fits must recover the parameters the data were made with."""
from __future__ import annotations

import numpy as np
import pandas as pd

from slmeval.scaling.allocation import params_for_tokens
from slmeval.scaling.multiepoch import predict_multi_epoch

SPEECH = {"E": 1.73, "A": 13.9, "B": 39.8, "alpha": 0.25, "beta": 0.24, "R_N_star": 31.0, "R_D_star": 25.0}
TEXT = {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.35, "beta": 0.35, "R_N_star": 5.31, "R_D_star": 15.4}
# Table 4: γq per metric, text vs speech
GAMMA = {"blimp": (0.066, 0.021), "tstorycloze": (0.039, 0.025), "sstorycloze": (0.046, 0.017)}


def law_loss(p: dict, n, d) -> np.ndarray:
    return p["E"] + p["A"] / np.asarray(n, float) ** p["alpha"] + p["B"] / np.asarray(d, float) ** p["beta"]


def single_epoch_runs(p: dict, n_runs: int, seed: int, noise: float = 0.002) -> pd.DataFrame:
    """Log-uniform N in [1e7, 3e9] and D/N in [2, 200]; multiplicative log-normal noise on the loss."""
    rng = np.random.default_rng(seed)
    n = np.exp(rng.uniform(np.log(1e7), np.log(3e9), n_runs))
    d = n * np.exp(rng.uniform(np.log(2), np.log(200), n_runs))
    loss = law_loss(p, n, d) * np.exp(rng.normal(0, noise, n_runs))
    return pd.DataFrame({"N": n, "D": d, "loss": loss})


def multi_epoch_runs(p: dict, seed: int, noise: float = 0.002) -> pd.DataFrame:
    """Three unique-data budgets; models from 0.5x to 500x N_opt(U); 1 to 300 epochs."""
    rng = np.random.default_rng(seed)
    u = np.repeat([1e7, 1e8, 1e9], 40)
    n = params_for_tokens(u, p["A"], p["B"], p["alpha"], p["beta"]) * np.exp(rng.uniform(np.log(0.5), np.log(500), len(u)))
    d = u * np.exp(rng.uniform(0, np.log(300), len(u)))
    loss = predict_multi_epoch(n, d, u, p, p["R_N_star"], p["R_D_star"]) * np.exp(rng.normal(0, noise, len(u)))
    return pd.DataFrame({"N": n, "D": d, "U": u, "loss": loss})


def envelope_runs(gamma: float, k: float, n_runs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Runs whose best-per-FLOP follows Q = k·C^γ: a third of the runs lie on the law with 0.5 %
    symmetric noise (compute-optimal runs, seed noise), the rest fall short of it (sub-optimal allocation)."""
    rng = np.random.default_rng(seed)
    c = np.exp(rng.uniform(np.log(1e17), np.log(1e21), n_runs))
    shortfall = np.where(rng.random(n_runs) < 0.3, rng.normal(0, 0.005, n_runs), rng.exponential(0.03, n_runs))
    return c, k * c ** gamma * np.exp(-shortfall)


def study_table(seed: int = 0) -> pd.DataFrame:
    """A mixed table for the end-to-end `slmeval fit` test: speech + text runs with a metric."""
    rows = []
    for mod, p, (g_text, g_speech) in (("speech", SPEECH, GAMMA["blimp"]), ("text", TEXT, GAMMA["blimp"])):
        df = single_epoch_runs(p, 30, seed + (mod == "text"))
        c = 6 * df["N"] * df["D"]
        gamma = g_text if mod == "text" else g_speech
        rng = np.random.default_rng(seed + 7)
        base = 0.7 if mod == "text" else 0.55
        df["blimp"] = base * (c / 1e19) ** gamma * np.exp(-rng.exponential(0.02, len(df)))
        df["modality"] = mod
        rows.append(df)
    out = pd.concat(rows, ignore_index=True)
    out.insert(0, "name", [f"run{i:03d}" for i in range(len(out))])
    return out
