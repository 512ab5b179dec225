"""`slmeval check`: a paired, exact regression gate between two runs on the same items."""
from __future__ import annotations

from slmeval.check.compare import CheckReport, ItemMismatchError, TaskComparison, compare_runs
from slmeval.check.runs import Run, RunError, items_sha256, load_run, read_samples
from slmeval.check.stats import mcnemar_exact, paired_delta_ci

__all__ = ["CheckReport", "ItemMismatchError", "Run", "RunError", "TaskComparison", "compare_runs",
           "items_sha256", "load_run", "mcnemar_exact", "paired_delta_ci", "read_samples"]
