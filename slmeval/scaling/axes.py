"""Readable tick labels for every axis of the `slmeval fit` figures.

matplotlib's log axis labels only decades (10^x in mathtext): an accuracy axis from 0.52 to 0.71 or a
loss axis from 2.3 to 4.8 holds no decade, so it came out with no label at all, or one. The rule here:

* log axes get ticks from the sparsest of these sets that puts at least 3 ticks in view: decades
  (every n-th, on exponents divisible by n, to stay near 8), then 1-2-5 per decade, then 1…9 per decade, then evenly spaced "nice"
  plain numbers (steps 1, 2, 2.5, 5 × 10^k) — a narrow log range is read like a linear one;
* labels are plain numbers: compute axes (label names FLOPs) in the compute notation of
  slmeval/fmt.py ("1e21"), every other axis as counts ("100M", "2.5", "0.55"), with as many
  significant digits as it takes for no two ticks to read alike;
* linear axes keep matplotlib's ticks, without the offset/scientific header ("+1e3") that hides
  the actual values.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.ticker import Formatter, Locator, LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

from slmeval.fmt import format_compute, format_count

MIN_TICKS = 3
MAX_DECADE_TICKS = 8
_MANTISSAS = ((1.0,), (1.0, 2.0, 5.0), tuple(float(m) for m in range(1, 10)))


def log_ticks(vmin: float, vmax: float) -> list[float]:
    """Tick values for a log axis viewing [vmin, vmax] (see the module docstring)."""
    lo, hi = sorted((float(vmin), float(vmax)))
    if not (hi > 0 and math.isfinite(hi)):
        return []
    if not (lo > 0 and math.isfinite(lo)):
        lo = hi * 1e-3
    k_lo, k_hi = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    tol = 1e-9 * hi
    for mantissas in _MANTISSAS:
        ticks = [m * 10.0 ** k for k in range(k_lo, k_hi + 1) for m in mantissas]
        ticks = [t for t in ticks if lo - tol <= t <= hi + tol]
        if len(ticks) >= MIN_TICKS:
            if len(mantissas) == 1 and len(ticks) > MAX_DECADE_TICKS:
                # every n-th decade, on exponents divisible by n: 1e12, 1e14, … whatever the view's edge
                step = math.ceil(len(ticks) / MAX_DECADE_TICKS)
                ticks = [t for t in ticks if round(math.log10(t)) % step == 0]
            return ticks
    for nbins in range(4, 10):   # MaxNLocator counts bins over ticks just outside the view: ask for more
        nice = MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
        ticks = [float(t) for t in nice if t > 0 and lo - tol <= t <= hi + tol]
        if len(ticks) >= MIN_TICKS:
            break
    return ticks


class ReadableLogLocator(Locator):
    """Major ticks of a log axis by `log_ticks`, recomputed at every draw from the view interval."""

    def __call__(self):
        vmin, vmax = self.axis.get_view_interval()
        return self.tick_values(vmin, vmax)

    def tick_values(self, vmin, vmax):
        return np.asarray(log_ticks(vmin, vmax))


class PlainFormatter(Formatter):
    """Counts or compute as plain numbers; `format_ticks` adds digits until the labels are distinct."""

    def __init__(self, compute: bool = False):
        self.compute = compute

    def _one(self, value: float, digits: int) -> str:
        return format_compute(value, digits) if self.compute else format_count(value, digits)

    def __call__(self, value, pos=None) -> str:
        return self._one(value, 2 if self.compute else 3)

    def format_ticks(self, values) -> list[str]:
        values = [float(v) for v in values]
        for digits in range(1 if self.compute else 2, 9):
            labels = [self._one(v, digits) for v in values]
            if len(set(labels)) == len(labels):
                return labels
        return labels


def is_compute_axis(label: str) -> bool:
    return "FLOP" in label


def readable_axes(ax) -> None:
    """Apply the rule of this module to both axes of `ax` (call after the data and scales are set)."""
    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "log":
            axis.set_major_locator(ReadableLogLocator())
            axis.set_major_formatter(PlainFormatter(compute=is_compute_axis(axis.get_label_text())))
            axis.set_minor_locator(LogLocator(subs="auto"))
            axis.set_minor_formatter(NullFormatter())
        elif axis.get_scale() == "linear":
            formatter = ScalarFormatter(useOffset=False)
            formatter.set_scientific(False)
            axis.set_major_formatter(formatter)
