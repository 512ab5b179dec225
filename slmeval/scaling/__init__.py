"""Scaling-law analyses behind `slmeval fit` and `slmeval loss` (see docs/scaling.md)."""
from __future__ import annotations

from slmeval.scaling.allocation import iso_flop_table, optimal_allocation, params_for_tokens
from slmeval.scaling.chinchilla import ChinchillaFit, fit_chinchilla
from slmeval.scaling.downstream import envelope_mask, fit_accuracy_vs_loss, fit_gamma_q, relative_efficiency
from slmeval.scaling.mixed_modal import barrier_crossing, fit_mixed_modal
from slmeval.scaling.multiepoch import fit_multi_epoch, predict_multi_epoch
from slmeval.scaling.tables import RunsTableError, load_runs, validate_runs

__all__ = ["ChinchillaFit", "RunsTableError", "barrier_crossing", "envelope_mask", "fit_accuracy_vs_loss",
           "fit_chinchilla", "fit_gamma_q", "fit_mixed_modal", "fit_multi_epoch", "iso_flop_table", "load_runs",
           "optimal_allocation", "params_for_tokens", "predict_multi_epoch", "relative_efficiency", "validate_runs"]
