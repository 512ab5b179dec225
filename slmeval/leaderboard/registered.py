"""What the board itself knows about a task: its registered task file, never the submission's copy of it.

A submission records each task's config, but a forger can write anything there (a bundled mini task
declared `mini: false` in the real sStoryCloze section). So the section, title and `mini` flag shown on
the page come from the board's own task registry, and a submitted config that claims the registered
task's version must equal the registered task in every field that changes a number or where it is shown.
"""
from __future__ import annotations

import json

from slmeval.results.verify import is_lm_eval, protocol_from_record, task_tie
from slmeval.task_loader.registry import TaskConfig, all_tasks

# The fields that decide what is read, how it is scored and grouped, and where it is shown. Paths and
# descriptions legitimately differ between machines (an absolute data path, the task file's folder).
COMPARED = ("source", "family", "options", "grouping", "headline", "headline_by_protocol", "leaderboard", "mini")


def registered_tasks() -> dict[str, TaskConfig]:
    return all_tasks()


def _plain(value: object) -> object:
    return json.loads(json.dumps(value, sort_keys=True, default=list))


def placement(task: str, registry: dict[str, TaskConfig]) -> tuple[str, str, bool]:
    """(section key, title, mini) for the page. A task the board does not register gets a section of its
    own named after it, marked as such: never a place among the benchmarks."""
    cfg = registry.get(task)
    if cfg is None:
        return task, f"{task} (not a task registered on this board)", False
    title = cfg.leaderboard.get("title") if isinstance(cfg.leaderboard.get("title"), str) else None
    return cfg.section, title or cfg.section, bool(cfg.mini)


def config_problems(results: dict, registry: dict[str, TaskConfig]) -> list[str]:
    """Each way a submitted task config differs from the registered task of the same version."""
    problems = []
    for task in results["results"]:
        cfg = registry.get(task)
        if cfg is None or str(results["versions"].get(task)) != str(cfg.version):
            continue    # another version (or an unregistered task): never official data, placed by name
        submitted = results["configs"].get(task) or {}
        mine = _plain(cfg.to_dict())
        protocol = (results.get("config") or {}).get("protocol") or {}
        # the evaluator writes the headline of the run's protocol (sBLIMP under cuervo: acc_macro)
        mine["headline"] = cfg.headline_for(str(protocol.get("name", "")))
        for key in COMPARED:
            if _plain(submitted.get(key)) != mine[key]:
                problems.append(f"configs.{task}.{key} = {submitted.get(key)!r} but the registered task {task!r} "
                                f"version {cfg.version} has {mine[key]!r}")
        problems += _tie_problems(task, submitted, protocol, cfg)
    return problems


def _tie_problems(task: str, submitted: dict, protocol: dict, cfg: TaskConfig) -> list[str]:
    """The tie credit the run scored the task with must be the one the registered task gives under the
    run's protocol (both resolved by Protocol.tie_value_for). The resolved credit is compared, not the
    task file's `tie_value_by_protocol`: a run recorded before task files declared ties has none, and
    its protocol's `tie_value_by_family` gave the same credit."""
    if is_lm_eval(protocol) or not isinstance(submitted.get("family"), str):
        return []
    used = task_tie(protocol, submitted, task)[0]
    registered = protocol_from_record(protocol).tie_value_for(cfg.family, cfg.tie_value_by_protocol)
    if used != registered:
        return [f"configs.{task}: ties were credited {used} but the registered task {task!r} version {cfg.version} "
                f"credits them {registered} under protocol {protocol.get('name')!r}"]
    return []
