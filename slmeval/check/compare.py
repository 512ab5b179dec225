"""Compare a new run against a baseline, task by task, and decide whether it regressed."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from slmeval.check.runs import Run, RunError, Sample, items_sha256
from slmeval.check.stats import mcnemar_exact, paired_delta_ci
from slmeval.results.verify import MAX_SHOWN, VerificationError, task_problems

TIE_RULE = ("ties count as wrong in the McNemar test and at the task's tie value in the run (configs.<task>.tie_value: "
            "0.5 by default; 0 under cuervo, sBLIMP 0.5) in the accuracy delta")
CI_METHOD = "Wald interval on per-item paired differences"


class ItemMismatchError(RunError):
    """The two runs were not scored on the same items, so they cannot be paired."""


@dataclass
class TaskComparison:
    task: str
    n_items: int
    base_acc: float          # 0..1, ties as half (as in results.json)
    new_acc: float
    delta_points: float      # 100 * (new - base)
    ci_low_points: float
    ci_high_points: float
    n_lost: int              # right in the baseline, not right in the new run
    n_gained: int            # not right in the baseline, right in the new run
    n_ties_base: int
    n_ties_new: int
    p_value: float
    significant: bool
    regressed: bool
    verdict: str
    warnings: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    new: str
    baseline: str
    alpha: float
    max_drop_points: float
    tasks: list[TaskComparison]
    tie_rule: str = TIE_RULE
    ci_method: str = CI_METHOD
    notes: list[str] = field(default_factory=list)
    standing: dict[str, str] = field(default_factory=dict)   # {"new", "baseline"}: consistent or reproduced

    @property
    def passed(self) -> bool:
        return not any(t.regressed for t in self.tasks)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["passed"] = self.passed
        out["confidence"] = 1.0 - self.alpha
        return out


def _describe_mismatch(task: str, new: list[Sample], base: list[Sample]) -> str:
    new_items = {(s.id, s.positive_key, s.negative_key) for s in new}
    base_items = {(s.id, s.positive_key, s.negative_key) for s in base}
    only_new = sorted(new_items - base_items)
    only_base = sorted(base_items - new_items)
    example = lambda items: ", ".join(repr(i[0]) for i in items[:3])  # noqa: E731
    parts = [f"task {task!r}: the item lists differ (items_sha256 new={items_sha256(new)[:12]}..., "
             f"baseline={items_sha256(base)[:12]}...)"]
    if only_new:
        parts.append(f"{len(only_new)} item(s) only in NEW (e.g. {example(only_new)})")
    if only_base:
        parts.append(f"{len(only_base)} item(s) only in BASELINE (e.g. {example(only_base)})")
    return "; ".join(parts) + ". Runs on different items cannot be paired; re-run both on the same task version."


def _checked_samples(run: Run, task: str, label: str) -> list[Sample]:
    samples = run.samples(task)
    recorded = run.task_hashes(task).get("items_sha256")
    if recorded and recorded != items_sha256(samples):
        raise RunError(f"{run.samples_path(task)}: items do not match provenance.task_hashes.{task}.items_sha256 "
                       f"recorded in {run.results_path} ({label} run); the samples file belongs to another run")
    n_recorded = (run.results["results"].get(task) or {}).get("n_pairs")
    if isinstance(n_recorded, int) and n_recorded != len(samples):
        raise RunError(f"{run.samples_path(task)}: {len(samples)} samples but {run.results_path} says "
                       f"results.{task}.n_pairs = {n_recorded}")
    # Every number the check reports or gates on must follow from the samples: metrics, credits, scores.
    try:
        problems = task_problems(run.results, task, run.sample_records(task), str(run.samples_path(task)))
    except VerificationError as exc:
        problems = [str(exc)]
    if problems:
        shown = problems[:MAX_SHOWN] + ([f"... and {len(problems) - MAX_SHOWN} more"] if len(problems) > MAX_SHOWN else [])
        raise RunError(f"{run.results_path} ({label} run): its numbers for {task!r} do not follow from its samples:"
                       "\n  " + "\n  ".join(shown))
    return samples


def _verdict(delta_points: float, significant_drop: bool, significant_gain: bool,
             max_drop: float) -> tuple[bool, str]:
    beyond = delta_points < -max_drop
    if beyond and significant_drop:
        return True, f"REGRESSION: dropped {-delta_points:.2f} points (> {max_drop:g}) and significantly"
    if beyond:
        return False, f"dropped {-delta_points:.2f} points (> {max_drop:g}) but not significantly"
    if significant_drop:
        return False, f"significant drop of {-delta_points:.2f} points, within the {max_drop:g}-point tolerance"
    if significant_gain:
        return False, f"significant gain of {delta_points:.2f} points"
    return False, "no significant change"


def resolution_warning(n_items: int, max_drop: float, alpha: float) -> str | None:
    """A --max-drop finer than one item of this task (100 / n points) cannot be resolved: losing a single
    item already exceeds it, so the tolerance does nothing and the verdict rests on the test alone."""
    step = 100.0 / n_items
    if not 0.0 < max_drop < step:
        return None
    # the fewest lost items (none gained) the exact McNemar test calls significant: p = 2 * 0.5**k
    needed = next((k for k in range(1, n_items + 1) if mcnemar_exact(k, 0) < alpha), None)
    floor = (f"a significant drop needs at least {needed} lost items ({100.0 * needed / n_items:.2f} points)"
             if needed is not None else "no drop on this task can be significant")
    return (f"--max-drop {max_drop:g} is finer than this task resolves: with {n_items} items one item is "
            f"{step:.2f} points, so a single lost item exceeds the tolerance and the verdict rests on the McNemar "
            f"test alone (at alpha={alpha:g} {floor}); a larger task, or --max-drop >= {step:.2f}, makes it count")


def compare_task(new_run: Run, base_run: Run, task: str, alpha: float, max_drop: float) -> TaskComparison:
    new = _checked_samples(new_run, task, "NEW")
    base = _checked_samples(base_run, task, "BASELINE")
    if items_sha256(new) != items_sha256(base):
        raise ItemMismatchError(_describe_mismatch(task, new, base))
    warnings = []
    new_data = new_run.task_hashes(task).get("data_sha256")
    base_data = base_run.task_hashes(task).get("data_sha256")
    if new_data and base_data and new_data != base_data:
        warnings.append("same items but different audio (data_sha256 differs): the change includes the data")
    if (coarse := resolution_warning(len(new), max_drop, alpha)) is not None:
        warnings.append(coarse)
    by_id = {s.id: s for s in base}
    new_scores = np.array([s.correct for s in new], dtype=np.float64)
    base_scores = np.array([by_id[s.id].correct for s in new], dtype=np.float64)
    new_right = new_scores == 1.0
    base_right = base_scores == 1.0
    n_lost = int(np.sum(base_right & ~new_right))
    n_gained = int(np.sum(~base_right & new_right))
    p_value = mcnemar_exact(n_lost, n_gained)
    ci = paired_delta_ci(new_scores, base_scores, confidence=1.0 - alpha)
    significant = p_value < alpha
    delta_points = 100.0 * ci.delta
    # The direction comes from the test's own counts, so a shift made only of ties cannot fail the check.
    regressed, verdict = _verdict(delta_points, significant and n_lost > n_gained,
                                  significant and n_gained > n_lost, max_drop)
    return TaskComparison(
        task=task, n_items=len(new), base_acc=float(base_scores.mean()), new_acc=float(new_scores.mean()),
        delta_points=delta_points, ci_low_points=100.0 * ci.ci_low, ci_high_points=100.0 * ci.ci_high,
        n_lost=n_lost, n_gained=n_gained,
        n_ties_base=sum(s.tie for s in base), n_ties_new=sum(s.tie for s in new),
        p_value=p_value, significant=significant, regressed=regressed, verdict=verdict, warnings=warnings)


def select_tasks(new_run: Run, base_run: Run, tasks: list[str] | None) -> tuple[list[str], list[str]]:
    """Tasks to compare (default: every baseline task) and notes about the ones left out."""
    notes = []
    if tasks:
        for task in tasks:
            for label, run in (("NEW", new_run), ("BASELINE", base_run)):
                if task not in run.results["results"]:
                    raise RunError(f"{run.results_path}: task {task!r} is not in this {label} run "
                                   f"(it has: {', '.join(run.tasks)})")
        return list(dict.fromkeys(tasks)), notes
    missing = [t for t in base_run.tasks if t not in new_run.results["results"]]
    if missing:
        raise RunError(f"{new_run.results_path}: the NEW run lacks baseline task(s) {', '.join(missing)}; "
                       f"run them or restrict the check with --tasks")
    extra = [t for t in new_run.tasks if t not in base_run.results["results"]]
    if extra:
        notes.append(f"not compared (no baseline): {', '.join(extra)}")
    return base_run.tasks, notes


def compare_runs(new_run: Run, base_run: Run, *, tasks: list[str] | None = None,
                 alpha: float = 0.05, max_drop: float = 0.5) -> CheckReport:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"--alpha must lie strictly between 0 and 1, got {alpha}")
    if not 0 <= max_drop < float("inf"):      # NaN too: every comparison with it is False, so nothing would fail
        raise ValueError(f"--max-drop must be a finite number >= 0 (accuracy points), got {max_drop}")
    selected, notes = select_tasks(new_run, base_run, tasks)
    comparisons = [compare_task(new_run, base_run, task, alpha, max_drop) for task in selected]
    return CheckReport(new=str(new_run.results_path), baseline=str(base_run.results_path), alpha=alpha,
                       max_drop_points=max_drop, tasks=comparisons, notes=notes)
