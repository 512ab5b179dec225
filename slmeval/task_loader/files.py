"""Reading task files: YAML (with lm-eval-style `include:`) and Python files that declare `TASKS`.

Which files in a folder are task files (the rule `--include-path` and the built-in folder share; sub-folders
are searched too, except those named `_*` or `.*`, so each benchmark keeps a folder of its own):
  * `*.yaml` / `*.yml` — each one is a task (or a list of tasks); it must have a `name`.
  * `*.py` — only a file with a module-level `TASKS = ...` assignment, found by parsing the file
    (never by running it); any other Python file (a stray `setup.py`, a helper) is skipped, unrun.
  * names starting with `_` or `.` are never tasks: shared bases that task files `include:` live there.
  * anything else (README.md, data) is ignored.

`include:` follows lm-eval (lm_eval/tasks/_yaml_loader.py, `load_yaml`): a file name or a list of
them, relative to the including file (or absolute); included files may include others (a cycle is an
error); their top-level keys are merged in order and the including file's own keys win. The merge is
shallow: a task that sets `options:` replaces the base's whole `options` mapping.

Every problem is a `TaskError` naming the file, so the caller can report that one file as broken and
carry on with the others.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)
YAML_SUFFIXES = (".yaml", ".yml")


class TaskError(ValueError):
    pass


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise TaskError(f"{path}: not valid YAML ({err})") from err
    except (OSError, UnicodeDecodeError) as err:
        raise TaskError(f"{path}: cannot be read ({err})") from err


def resolve_includes(doc: dict, path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """`doc` (a task mapping read from `path`) with its `include:` chain merged in."""
    if "include" not in doc:
        return doc
    doc = dict(doc)
    includes = doc.pop("include")
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) and i for i in includes):
        raise TaskError(f"{path}: `include` must be a file name or a list of file names, got {includes!r}")
    merged: dict = {}
    for name in includes:
        target = Path(name).expanduser()
        target = (target if target.is_absolute() else path.parent / target).resolve()
        if target in seen or target == path.resolve():
            chain = [*seen, path.resolve(), target]     # named from the task file, where the user looks
            raise TaskError(f"{seen[0] if seen else path}: include cycle: {' -> '.join(p.name for p in chain)}")
        if not target.is_file():
            raise TaskError(f"{path}: included file {name!r} not found (looked at {target})")
        base = _read_yaml(target)
        if not isinstance(base, dict):
            raise TaskError(f"{target} (included by {path}): expected a mapping of task fields, "
                            f"got {type(base).__name__}")
        merged.update(resolve_includes(base, target, seen + (path.resolve(),)))
    if not seen:        # the task file itself: what it would publish under must be its own
        _refuse_inherited(merged, doc, path, includes)
    merged.update(doc)   # the including file's own keys win
    return merged


# Declared by a task itself, never inherited from a shared base: "sWUGGY-long" built on _swuggy_base.yaml
# must not publish into sWUGGY's leaderboard section, claim its `lexical/<split>.txt` export, or borrow the
# version that says when sWUGGY's numbers changed meaning.
OWN_FIELDS = ("leaderboard", "exports", "version")


def _refuse_inherited(inherited: dict, doc: dict, path: Path, includes: list[str]) -> None:
    taken = [k for k in OWN_FIELDS if k in inherited and k not in doc]
    if taken:
        raise TaskError(f"{path}: field(s) {', '.join(taken)} would be inherited from the included "
                        f"{', '.join(includes)}; a task declares its own leaderboard section, exports and version "
                        f"(write them in {path.name}, e.g. `leaderboard: {{section: {doc.get('name', path.stem)}}}`, "
                        f"`exports: {{}}`, `version: 1`), and shared bases leave them out")


def declares_tasks(path: Path) -> bool:
    """Whether a Python file assigns `TASKS` at module level — decided by parsing, not running it."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError) as err:
        raise TaskError(f"{path}: not valid Python ({err})") from err
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        if any(isinstance(t, ast.Name) and t.id == "TASKS" for t in targets):
            return True
    return False


def _run_python_task_file(path: Path) -> list:
    # A unique module name per file: two folders may both hold a `tasks.py`.
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"slmeval_task_file_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TaskError(f"{path}: cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module   # dataclasses and pickling look modules up by name while they run
    try:
        spec.loader.exec_module(module)   # a task file is code the user chose to include
    except BaseException as err:   # noqa: BLE001 - SystemExit too: a task file must not end the run
        sys.modules.pop(name, None)
        if isinstance(err, KeyboardInterrupt):
            raise
        line = next((f" (line {tb.lineno})" for tb in traceback.extract_tb(err.__traceback__) if tb.filename == str(path)), "")
        raise TaskError(f"{path}: raised {type(err).__name__}: {err}{line} while being imported") from None
    tasks = getattr(module, "TASKS", None)
    if not isinstance(tasks, (list, tuple)):
        raise TaskError(f"{path}: TASKS must be a list of task mappings, got {type(tasks).__name__}")
    return list(tasks)


def read_task_file(path: Path) -> list[dict] | None:
    """The raw task mappings a file defines (includes resolved), or None when it is not a task file."""
    if path.name.startswith(("_", ".")) or not path.is_file():
        return None
    if path.suffix in YAML_SUFFIXES:
        doc = _read_yaml(path)
        items = doc if isinstance(doc, list) else [doc]
        out = []
        for item in items:
            if not isinstance(item, dict):
                raise TaskError(f"{path}: a task must be a mapping of fields, got {type(item).__name__}")
            item = resolve_includes(item, path)
            if "name" not in item:
                raise TaskError(f"{path}: no `name` — every *.yaml here is a task; a shared base that other "
                                "task files `include:` goes in a file whose name starts with `_`")
            out.append(item)
        return out
    if path.suffix == ".py":
        if not declares_tasks(path):
            log.info("%s: skipped, not a task file (no module-level TASKS = [...])", path)
            return None
        return _run_python_task_file(path)
    return None
