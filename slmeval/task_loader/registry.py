"""Task registry: built-in task files (package data `slmeval.tasks`), `--include-path` folders and the
`slmeval.tasks` entry-point group.

A task file says everything benchmark-specific: the reader for its published layout and its options
(the split), the metric family and its grouping (by voice / by item / breakdowns), the headline
metric and the credit of a tie (each per protocol where papers differ), the exports it feeds and its
leaderboard section. Nothing
in the evaluator, protocols, exports or leaderboard knows a benchmark by name. Which files are task
files, and how `include:` works: slmeval/task_loader/files.py.

A broken task file (bad YAML, unknown field, a Python file that raises) is reported by name and does
not hide the others; asking for a task that a broken file may have defined says so.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from slmeval.data import check_reader_options
from slmeval.data.remote import parse_remote
from slmeval.io import safe_name
from slmeval.plugins import PluginError, Registry
from slmeval.task_loader.files import YAML_SUFFIXES, TaskError, read_task_file

log = logging.getLogger(__name__)

BUILTIN_PACKAGE = "slmeval.tasks"     # the repository's tasks/ folder, shipped as package data
ENTRY_POINT_GROUP = "slmeval.tasks"   # value: a callable returning task mappings, or a folder of task files
__all__ = ["BrokenTask", "Grouping", "TaskConfig", "TaskError", "TaskRegistry", "all_tasks", "builtin_task_dir",
           "get_tasks", "load_registry"]


@dataclass(frozen=True)
class Grouping:
    """How pairs group, for the metric family: all optional."""
    voice: str | None = None               # meta column naming the voice: per-voice acc, mean and spread
    item: tuple[str, ...] = ()             # meta columns naming one item across its voices (sBLIMP minimal pair)
    breakdown: tuple[str, ...] = ()        # meta columns to tabulate acc by; acc_macro averages over the first


@dataclass(frozen=True)
class TaskConfig:
    name: str
    source: str                     # reader name (slmeval.data.READERS)
    path: str                       # absolute; "./…" or "../…" = relative to the task file; else to --data-root
    family: str = "pairs"           # metric family (slmeval.metrics.families.METRIC_FAMILIES)
    options: dict = field(default_factory=dict)        # reader options (the split lives here)
    grouping: Grouping = field(default_factory=Grouping)
    headline: str = "acc"           # the metric shown first and published
    headline_by_protocol: dict = field(default_factory=dict)   # {protocol preset: metric} where papers differ
    # {protocol preset: credit of a tie} where the benchmark's peers score ties their own way (sBLIMP under
    # cuervo: 0.5); the precedence against --protocol-args: Protocol.tie_value_for (slmeval/scoring/protocol.py)
    tie_value_by_protocol: dict = field(default_factory=dict)
    exports: dict = field(default_factory=dict)        # {export name: {its arguments}} (slmeval.exports.base)
    leaderboard: dict = field(default_factory=dict)    # {section: key, title: shown name}; section defaults to name
    version: int = 1
    description: str = ""
    how_to_get: str = ""
    mini: bool = False              # bundled toy data: results are labelled as such
    hub: dict = field(default_factory=dict)       # a pinned Hub copy of the data (slmeval/data/remote.py)
    archive: dict = field(default_factory=dict)   # or the official archive address with its checksum
    origin: str = ""                # the file or entry point that defined it
    base_dir: str = ""              # the task file's folder ("" when it came from an entry-point callable)

    def resolve_path(self, data_root: str | Path | None) -> Path:
        return self.locate(data_root)[0]

    def locate(self, data_root: str | Path | None) -> tuple[Path, str]:
        """(path, how it was resolved) — the evaluator logs both."""
        path = Path(self.path).expanduser()
        if path.is_absolute():
            return path, "absolute path in the task file"
        if self.path.startswith(("./", "../")):
            if not self.base_dir:
                raise TaskError(f"task {self.name!r} ({self.origin}): path {self.path!r} is relative to its task "
                                "file, but it was not defined by a file; give an absolute path or one under --data-root")
            return (Path(self.base_dir) / path).resolve(), f"relative to the task file {self.origin}"
        if data_root is None:
            raise TaskError(f"task {self.name!r} reads {self.path!r} relative to --data-root, which was not given.\n"
                            f"How to get the data: {self.how_to_get or 'see the task file ' + self.origin}")
        return Path(data_root).expanduser() / path, "relative to --data-root"

    @property
    def remote(self):
        """The pinned public copy (slmeval.data.remote.HubPin / ArchivePin), or None."""
        return parse_remote(self.hub or None, self.archive or None, f"task {self.name!r} ({self.origin})")

    def headline_for(self, protocol: str) -> str:
        preset = protocol.split("+", 1)[0]   # "cuervo+custom" reports like "cuervo"
        return self.headline_by_protocol.get(preset, self.headline)

    @property
    def section(self) -> str:
        return self.leaderboard.get("section", self.name)

    def to_dict(self) -> dict:
        """The task as results.json's `configs.<task>` records it (and the resume fingerprint hashes it).
        `tie_value_by_protocol` only where declared: every other task's record and fingerprint stay what
        they were before the field existed."""
        record = asdict(self)
        if not self.tie_value_by_protocol:
            del record["tie_value_by_protocol"]
        return record


@dataclass(frozen=True)
class BrokenTask:
    origin: str          # the file or entry point
    reason: str          # the one clear error
    names: tuple[str, ...] = ()   # task names it defines, where known


# -- validation -----------------------------------------------------------------------------------

def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise TaskError(f"{where}: expected a column name or a list of them, got {value!r}")
    return tuple(value)


def _grouping(raw: Any, where: str) -> Grouping:
    if isinstance(raw, Grouping):
        return raw
    if raw is None:
        return Grouping()
    if not isinstance(raw, dict) or set(raw) - {"voice", "item", "breakdown"}:
        raise TaskError(f"{where}: `grouping` takes voice (a column), item and breakdown (column lists); got {raw!r}")
    voice = raw.get("voice")
    if voice is not None and not (isinstance(voice, str) and voice):
        raise TaskError(f"{where}: grouping.voice must be a column name, got {voice!r}")
    return Grouping(voice=voice, item=_str_list(raw.get("item", []), f"{where}: grouping.item"),
                    breakdown=_str_list(raw.get("breakdown", []), f"{where}: grouping.breakdown"))


_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "source": (str,), "path": (str,), "family": (str,), "options": (dict,), "headline": (str,),
    "headline_by_protocol": (dict,), "tie_value_by_protocol": (dict,), "exports": (dict,), "leaderboard": (dict,),
    "version": (int,),
    "description": (str,), "how_to_get": (str,), "mini": (bool,), "hub": (dict,), "archive": (dict,)}


# Metric families of the first task-file format (before families became plugins driven by `grouping:`),
# found with `git log -S"storycloze"` on the metrics module (then a single file): each is `pairs` with the
# grouping its code hard-wired. A task file written then still loads, with a warning saying what to write instead.
LEGACY_FAMILIES: dict[str, dict] = {
    "storycloze": {"voice": "speaker"},                                  # per-voice acc when `speaker` is filled
    "sblimp": {"breakdown": ["type"], "item": ["type", "subtype", "item"]},   # acc_macro over types, acc_all_voices
}


def _legacy_family(raw: dict, origin: str) -> dict:
    family = raw.get("family")
    if not isinstance(family, str) or family not in LEGACY_FAMILIES:
        return raw
    grouping = LEGACY_FAMILIES[family]
    log.warning("%s: `family: %s` is the previous task-file format (deprecated); it reads as `family: pairs` "
                "with `grouping: %s`: write that instead", origin, family, grouping)
    return {**raw, "family": "pairs", "grouping": raw["grouping"] if raw.get("grouping") is not None else grouping}


def _tie_credits(raw: Any, origin: str) -> dict[str, float]:
    """`tie_value_by_protocol`: {protocol preset name: a credit in [0, 1]}. Any preset name is accepted
    (a task file may name a plugin's protocol that is not installed here, as `headline_by_protocol` may),
    but not a "+custom" one: a customised protocol reads its preset's entry."""
    credits: dict[str, float] = {}
    for name, value in (raw or {}).items():
        where = f"{origin}: field tie_value_by_protocol.{name}"
        if not isinstance(name, str) or not name or "+" in name:
            raise TaskError(f"{origin}: field tie_value_by_protocol: {name!r} is not a protocol preset name "
                            "(e.g. {cuervo: 0.5}; a customised protocol reads its preset's entry)")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise TaskError(f"{where}: expected the credit of a tie, a number in [0, 1], got {value!r}")
        credits[name] = float(value)
    return credits


def make_task(raw: Any, origin: str, base_dir: str = "") -> TaskConfig:
    """A validated TaskConfig from a task mapping; every problem is a TaskError naming `origin`."""
    if isinstance(raw, TaskConfig):
        raw = {k: v for k, v in asdict(raw).items() if k not in ("origin", "base_dir")}
    if not isinstance(raw, dict):
        raise TaskError(f"{origin}: a task must be a mapping, got {type(raw).__name__}")
    raw = _legacy_family(raw, origin)
    known = {f.name for f in fields(TaskConfig)} - {"origin", "base_dir"}
    unknown = set(raw) - known
    if unknown:
        raise TaskError(f"{origin}: unknown task field(s) {sorted(unknown)}; known: {sorted(known)}")
    missing = [k for k in ("name", "source", "path") if k not in raw]
    if missing:
        raise TaskError(f"{origin}: task is missing required field(s) {missing}")
    for key, value in raw.items():
        types = _TYPES.get(key)
        if types and value is not None and (not isinstance(value, types) or (int in types and isinstance(value, bool)
                                                                                and bool not in types)):
            raise TaskError(f"{origin}: field {key}: expected {types[0].__name__}, got {value!r}")
    try:
        safe_name(raw["name"], "task name")
        check_reader_options(raw["source"], dict(raw.get("options") or {}))
        remote = parse_remote(raw.get("hub"), raw.get("archive"), f"task {raw['name']!r}")
        if remote is not None:   # the downloaded copy's reader and options, checked as the local ones are
            check_reader_options(remote.source or raw["source"], dict(
                remote.options if remote.options is not None else raw.get("options") or {}))
    except (ValueError, PluginError) as err:
        raise TaskError(f"{origin}: {err}") from None
    exports = {str(k): dict(v or {}) for k, v in (raw.get("exports") or {}).items()}
    if not all(isinstance(v, dict) for v in (raw.get("exports") or {}).values() if v is not None):
        raise TaskError(f"{origin}: `exports` maps an export name to its arguments, e.g. {{zerospeech: {{track: syntactic}}}}")
    values = {k: v for k, v in raw.items() if v is not None}
    values.update(options=dict(raw.get("options") or {}), grouping=_grouping(raw.get("grouping"), origin),
                  exports=exports, headline_by_protocol=dict(raw.get("headline_by_protocol") or {}),
                  tie_value_by_protocol=_tie_credits(raw.get("tie_value_by_protocol"), origin),
                  leaderboard=dict(raw.get("leaderboard") or {}), hub=dict(raw.get("hub") or {}),
                  archive=dict(raw.get("archive") or {}))
    return TaskConfig(**values, origin=origin, base_dir=base_dir)


# -- discovery ------------------------------------------------------------------------------------

@dataclass
class TaskRegistry:
    tasks: dict[str, TaskConfig] = field(default_factory=dict)
    broken: list[BrokenTask] = field(default_factory=list)

    def add(self, task: TaskConfig) -> None:
        self.tasks[task.name] = task

    def fail(self, origin: str, reason: str, names: tuple[str, ...] = ()) -> None:
        log.warning("%s", reason)
        self.broken.append(BrokenTask(origin, reason, names))


def builtin_task_dir() -> Path:
    """The built-in task files: the repository's tasks/ folder, installed as the package `slmeval.tasks`
    (an editable install maps it back to tasks/). Missing or empty is a loud error, never an empty list."""
    try:
        folder = Path(str(resources.files(BUILTIN_PACKAGE))).resolve()   # origins name the real file
    except ModuleNotFoundError:
        raise TaskError(f"no built-in tasks: the package {BUILTIN_PACKAGE!r} is not installed with slmeval. "
                        "This install is incomplete; reinstall slmeval (`pip install -e .` in a checkout).") from None
    if not any(p.suffix in (".yaml", ".yml") for p in folder.rglob("*")):
        raise TaskError(f"no built-in tasks: {folder} holds no task files. This install is incomplete; reinstall slmeval.")
    return folder


TASK_SUFFIXES = (*YAML_SUFFIXES, ".py")     # what read_task_file reads; anything else is not a task file


def _scan(folder: Path, registry: TaskRegistry, found: list[TaskConfig]) -> None:
    """Every task file under `folder`, sub-folders included (a folder per benchmark, as lm-eval's
    lm_eval/tasks/<benchmark>/); folders named `_*` or `.*` (and __pycache__) are skipped."""
    with os.scandir(folder) as entries:      # one call; a file's type from the listing, no stat per file
        listed = sorted(entries, key=lambda e: e.name)
    for entry in listed:
        if entry.is_dir():
            if not entry.name.startswith(("_", ".")):
                _scan(Path(entry.path), registry, found)
            continue
        if not entry.name.endswith(TASK_SUFFIXES):    # a task folder may hold its audio: 8,000 files cost 0.3 s
            continue
        path = Path(entry.path)
        try:
            raw = read_task_file(path)
            if raw is not None:
                found.extend(make_task(item, str(path), str(path.parent.resolve())) for item in raw)
        except TaskError as err:
            registry.fail(str(path), str(err), _names_in(path))


def _names_in(path: Path) -> tuple[str, ...]:
    """Best-effort task names in a broken file, so asking for one of them points at the file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    return tuple(re.findall(r"""(?m)(?:^\s*-?\s*name:\s*|name\s*=\s*)["']?([A-Za-z0-9._+-]+)""", text))


def _from_entry_points(registry: TaskRegistry, found: list[TaskConfig]) -> None:
    sources: Registry = Registry("task source", group=ENTRY_POINT_GROUP)   # fresh: entry points may change
    for entry in sources.entries():
        if entry.error is not None:
            registry.fail(entry.origin, f"{entry.origin}: {entry.error}")
            continue
        try:
            produced = entry.obj() if callable(entry.obj) else entry.obj
            if isinstance(produced, (str, Path)):
                if not Path(produced).is_dir():
                    raise TaskError(f"{entry.origin}: task folder {produced} does not exist")
                _scan(Path(produced), registry, found)
            else:
                found.extend(make_task(t, entry.origin) for t in produced)
        except TaskError as err:
            registry.fail(entry.origin, str(err))
        except Exception as err:   # noqa: BLE001 - third-party code must not block unrelated tasks
            registry.fail(entry.origin, f"{entry.origin}: raised {type(err).__name__}: {err}")


def load_registry(include_paths: list[str | Path] | None = None) -> TaskRegistry:
    """Every task, plus every task file that could not be read. A name defined twice is unusable (both
    definitions are named), other tasks are not affected."""
    registry, found = TaskRegistry(), []
    _scan(builtin_task_dir(), registry, found)
    _from_entry_points(registry, found)
    for folder in include_paths or []:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise TaskError(f"--include-path {folder}: no such folder")
        _scan(folder, registry, found)
    by_name: dict[str, list[TaskConfig]] = {}
    for task in found:
        by_name.setdefault(task.name, []).append(task)
    for name, defs in by_name.items():
        if len(defs) == 1:
            registry.add(defs[0])
        else:
            where = " and ".join(d.origin for d in defs)
            registry.fail(defs[-1].origin, f"task {name!r} is defined twice: {where}", (name,))
    return registry


def all_tasks(include_paths: list[str | Path] | None = None) -> dict[str, TaskConfig]:
    """Every usable task by name (broken task files are logged as warnings)."""
    return load_registry(include_paths).tasks


def get_tasks(names: list[str], include_paths: list[str | Path] | None = None) -> list[TaskConfig]:
    registry = load_registry(include_paths)
    if len(set(names)) != len(names):
        raise TaskError(f"task listed twice in --tasks: {names}")
    problems = []
    for name in names:
        if name in registry.tasks:
            continue
        culprits = [b.reason for b in registry.broken if name in b.names]
        if culprits:
            problems.append(f"task {name!r} cannot be used: " + "; ".join(culprits))
        else:
            others = [b.origin for b in registry.broken]
            problems.append(f"unknown task {name!r}. Registered: {', '.join(sorted(registry.tasks))} "
                            "(`slmeval tasks` lists them with their layouts)"
                            + (f". Task files that could not be read: {', '.join(others)}" if others else ""))
    if problems:
        raise TaskError("\n".join(problems))
    return [registry.tasks[n] for n in names]

