"""Metrics layer: metric families (`families.py`: the `METRIC_FAMILIES` registry, pair accuracy and its
groupings, shared statistics) and the items-averaged-over-voices families (`items.py`)."""
from __future__ import annotations

from slmeval.metrics.families import METRIC_FAMILIES, mean_stderr, pair_metrics

__all__ = ["METRIC_FAMILIES", "mean_stderr", "pair_metrics"]
