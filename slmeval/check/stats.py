"""Paired statistics for two runs scored on the same items.

* Exact McNemar test: under "no change" each discordant item (right in one run, wrong in the other)
  is equally likely to go either way, so the number lost is Binomial(b + c, 1/2); the two-sided
  p-value is scipy's exact binomial test on it (which, for p = 1/2, is min(1, 2 * smaller tail)).
* Ties (correct = 0.5, the two log-probs equal) count as *wrong* in the test: the model did not
  prefer the positive side. The accuracy delta and its CI keep the reported convention (a tie is
  worth half), so the delta equals the difference of the accuracies in results.json.
* Delta CI: Wald interval on the per-item paired differences d_i = new_i - base_i,
  mean(d) +- z * sqrt(mean((d - mean(d))^2) / n). For 0/1 scores this is the textbook Wald
  interval for a difference of paired proportions; it collapses to a point when no item changed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, norm


def mcnemar_exact(n_lost: int, n_gained: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (1.0 when there are none)."""
    if n_lost < 0 or n_gained < 0:
        raise ValueError("discordant counts must be non-negative")
    n = n_lost + n_gained
    if n == 0:
        return 1.0
    return float(binomtest(n_lost, n, 0.5, alternative="two-sided").pvalue)


@dataclass(frozen=True)
class PairedDelta:
    delta: float      # mean(new - base), accuracy units (0..1)
    stderr: float
    ci_low: float
    ci_high: float
    confidence: float


def paired_delta_ci(new: np.ndarray, base: np.ndarray, confidence: float = 0.95) -> PairedDelta:
    """Wald CI of the mean paired difference (see module docstring)."""
    new = np.asarray(new, dtype=np.float64)
    base = np.asarray(base, dtype=np.float64)
    if new.shape != base.shape or new.ndim != 1 or new.size == 0:
        raise ValueError("paired scores must be two non-empty 1-D arrays of equal length")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must lie strictly between 0 and 1")
    diff = new - base
    delta = float(diff.mean())
    stderr = math.sqrt(float(np.mean((diff - delta) ** 2)) / diff.size)
    z = float(norm.ppf(0.5 + confidence / 2.0))
    return PairedDelta(delta, stderr, delta - z * stderr, delta + z * stderr, confidence)
