"""`--export NAME`: files for other tools, written from a finished run (e.g. a ZeroSpeech submission).

An export is `fn(out_dir: Path, tasks: list[ExportTask]) -> list[Path]`, registered in `EXPORTS`
(entry-point group `slmeval.exports`). It receives only the tasks whose task file declares it
(`exports: {<name>: {<arguments>}}`) and writes under `out_dir` (`<--output>/<name>/`). Which task
feeds which part of the export is the task file's business, never a benchmark name tested here.
An export may carry a `check(configs)` attribute: called with the declaring tasks before any work, it
raises a ValueError for tasks it cannot export together. Built-in: `zerospeech`
(slmeval/exports/zerospeech.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from slmeval.plugins import Registry
from slmeval.task_loader.registry import TaskConfig, TaskError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportTask:
    config: TaskConfig
    args: dict                  # the task file's `exports: {<this export>: {...}}` arguments
    metrics: dict
    samples: list[dict]         # the rows of samples_<task>.jsonl


EXPORTS: Registry[Callable[[Path, list[ExportTask]], list[Path]]] = Registry(
    "export", group="slmeval.exports", package="slmeval.exports")


def parse_exports(export: str | list[str] | None) -> list[str]:
    if not export:
        return []
    names = export.split(",") if isinstance(export, str) else list(export)
    return [n.strip() for n in names if n.strip()]


def check_exports(names: list[str], configs: list[TaskConfig]) -> None:
    """Before any work: each export exists and at least one selected task declares it."""
    for name in names:
        export = EXPORTS.get(name)   # PluginError (a ValueError) lists the known exports
        covered = [c.name for c in configs if name in c.exports]
        if not covered:
            raise TaskError(f"--export {name}: none of the selected tasks declares it "
                            f"({', '.join(c.name for c in configs)}); a task opts in with "
                            f"`exports: {{{name}: {{...}}}}` in its task file")
        check = getattr(export, "check", None)
        if check is not None:
            check([c for c in configs if name in c.exports])
        skipped = [c.name for c in configs if name not in c.exports]
        if skipped:
            log.info("--export %s: from %s; not from %s (their task files do not declare it)",
                     name, ", ".join(covered), ", ".join(skipped))


def run_exports(names: list[str], out_dir: Path, configs: list[TaskConfig], metrics: dict[str, dict],
                samples: dict[str, list[dict]]) -> list[Path]:
    written: list[Path] = []
    for name in names:
        tasks = [ExportTask(c, c.exports[name], metrics[c.name], samples[c.name]) for c in configs
                 if name in c.exports]
        written += EXPORTS.get(name)(out_dir / name, tasks)
    return written

