"""Task registry: built-in task files in `tasks/`, entry points, and `--include-path` folders.

A task is a small YAML (or a Python file defining `TASKS = [...]`) naming its metric family, the reader
for its published layout, where the data lives and how to get it. Nothing here knows about any one
benchmark: adding a task never touches the package.
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

FAMILIES = ("sblimp", "storycloze", "pairs")
REPO_ROOT = Path(__file__).resolve().parent.parent
BUILTIN_TASK_DIR = REPO_ROOT / "tasks"
ENTRY_POINT_GROUP = "slmeval.tasks"


class TaskError(ValueError):
    pass


@dataclass(frozen=True)
class TaskConfig:
    name: str
    family: str                     # metric family: sblimp | storycloze | pairs
    source: str                     # reader name in slmeval.data.READERS
    path: str                       # relative to --data-root (mini tasks: to the repo root), or absolute
    options: dict = field(default_factory=dict)
    version: int = 1
    description: str = ""
    how_to_get: str = ""
    mini: bool = False              # bundled toy data: results are labelled as such
    origin: str = ""                # the file or entry point that defined it

    def resolve_path(self, data_root: str | Path | None) -> Path:
        path = Path(self.path).expanduser()
        if path.is_absolute():
            return path
        if self.mini:
            return REPO_ROOT / path
        if data_root is None:
            raise TaskError(f"task {self.name!r} reads {self.path!r} relative to --data-root, which was not given.\n"
                            f"How to get the data: {self.how_to_get or 'see the task file ' + self.origin}")
        return Path(data_root).expanduser() / path

    def to_dict(self) -> dict:
        return asdict(self)


def _make(raw: Any, origin: str) -> TaskConfig:
    if isinstance(raw, TaskConfig):
        return raw
    if not isinstance(raw, dict):
        raise TaskError(f"{origin}: a task must be a mapping, got {type(raw).__name__}")
    known = {f for f in TaskConfig.__dataclass_fields__ if f != "origin"}
    unknown = set(raw) - known
    if unknown:
        raise TaskError(f"{origin}: unknown task field(s) {sorted(unknown)}; known: {sorted(known)}")
    missing = [k for k in ("name", "family", "source", "path") if k not in raw]
    if missing:
        raise TaskError(f"{origin}: task is missing required field(s) {missing}")
    if raw["family"] not in FAMILIES:
        raise TaskError(f"{origin}: family {raw['family']!r}: expected one of {FAMILIES}")
    return TaskConfig(**{**raw, "options": dict(raw.get("options") or {}), "origin": origin})


def load_task_file(path: Path) -> list[TaskConfig]:
    if path.suffix in (".yaml", ".yml"):
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise TaskError(f"{path}: not valid YAML ({err})") from err
        items = doc if isinstance(doc, list) else [doc]
    elif path.suffix == ".py":
        spec = importlib.util.spec_from_file_location(f"slmeval_task_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)   # a task file is code the user chose to include
        if not hasattr(module, "TASKS"):
            raise TaskError(f"{path}: a Python task file must define TASKS = [...]")
        items = list(module.TASKS)
    else:
        return []
    return [_make(item, str(path)) for item in items]


def _scan(folder: Path) -> list[TaskConfig]:
    if not folder.is_dir():
        raise TaskError(f"task folder {folder} does not exist")
    tasks: list[TaskConfig] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(("_", ".")):
            continue
        tasks.extend(load_task_file(path))
    return tasks


def _from_entry_points() -> list[TaskConfig]:
    """Entry point value: a callable returning task dicts/TaskConfigs, or a folder path (str)."""
    tasks: list[TaskConfig] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        produced = obj() if callable(obj) else obj
        if isinstance(produced, (str, Path)):
            tasks.extend(_scan(Path(produced)))
        else:
            tasks.extend(_make(t, f"entry point {ep.name} ({ep.value})") for t in produced)
    return tasks


def all_tasks(include_paths: list[str | Path] | None = None) -> dict[str, TaskConfig]:
    """Every registered task by name. A name defined twice is an error naming both definitions."""
    found = _scan(BUILTIN_TASK_DIR) if BUILTIN_TASK_DIR.is_dir() else []
    found += _from_entry_points()
    for folder in include_paths or []:
        found += _scan(Path(folder))
    registry: dict[str, TaskConfig] = {}
    for task in found:
        if task.name in registry:
            raise TaskError(f"task {task.name!r} is defined twice: {registry[task.name].origin} and {task.origin}")
        registry[task.name] = task
    return registry


def get_tasks(names: list[str], include_paths: list[str | Path] | None = None) -> list[TaskConfig]:
    registry = all_tasks(include_paths)
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise TaskError(f"unknown task(s): {', '.join(unknown)}. Registered: {', '.join(sorted(registry))} "
                        "(`slmeval tasks` lists them with their layouts)")
    if len(set(names)) != len(names):
        raise TaskError(f"task listed twice in --tasks: {names}")
    return [registry[n] for n in names]
