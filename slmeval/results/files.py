"""Result files: results.json (lm-eval-shaped) and samples_<task>.jsonl (exports: slmeval/exports/base.py).

Every file is written atomically (temp file in the same folder + os.replace), so a killed run leaves
either the previous file or the new one — never half of one.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import slmeval
from slmeval.io import SAFE_NAME, int_list_json, jsonl_line

RESULTS_FILE = "results.json"


def items_sha256(rows: Iterable[tuple[str, str, str]]) -> str:
    """Hash of the item list (id, positive key, negative key), order-independent."""
    lines = sorted(f"{i}\t{p}\t{n}\n" for i, p, n in rows)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def meta_sha256(rows: Iterable[tuple[str, dict]]) -> str:
    """Hash of each item's metadata (types, voices, parts, gold index) with its id, order-independent.

    Separate from items_sha256 because the metrics group and credit by these columns: a submitter who edits
    them (merges two SALMon parts, renames a voice) changes the numbers while the items stay the same.
    The metadata is hashed as it reads back from samples JSONL, so the run and a re-derivation agree."""
    lines = sorted(f"{i}\t{_meta_text(meta)}\n" for i, meta in rows)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


_SORTED = json.JSONEncoder(sort_keys=True, allow_nan=False)
_FLAT_VALUES = {str, int, float, bool, type(None)}


def _meta_text(meta: dict) -> str:
    """`json.dumps(json.loads(jsonl_line(meta)), sort_keys=True)`: for the usual flat meta (text keys; text,
    number, bool or null values, no NaN) the round trip through JSON changes nothing, so it is skipped."""
    if type(meta) is dict and set(map(type, meta)) <= {str} and set(map(type, meta.values())) <= _FLAT_VALUES:
        try:
            return _SORTED.encode(meta)
        except ValueError:        # NaN / inf: written as null, which the round trip gives
            pass
    return json.dumps(json.loads(jsonl_line(meta)), sort_keys=True)


def data_sha256(content_hashes: Iterable[str]) -> str:
    """Hash of the audio (or unit) content of every utterance, in item order."""
    digest = hashlib.sha256()
    for h in content_hashes:
        digest.update(h.encode() + b"\n")
    return digest.hexdigest()


def git_sha() -> str | None:
    """The slmeval source revision (None for an installed copy outside a git checkout)."""
    root = Path(slmeval.__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def provenance(model_sha256: str | None, task_hashes: dict[str, dict]) -> dict:
    return {"slmeval_version": slmeval.__version__, "git_sha": git_sha(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model_sha256": model_sha256, "task_hashes": task_hashes}


def load_results(path: str | Path) -> dict:
    """Read a results.json (or a run folder holding one), with a clear error if it is not one."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such results file") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict) or "results" not in data:
        raise ValueError(f"{path}: not an slmeval results file (no 'results' key)")
    return data


def previous_run_files(out_dir: str | Path) -> list[Path]:
    """The samples files of the run an output folder holds now (those its results.json names).

    A new run written into the folder replaces them as one unit with its own files
    (`write_files_together(..., replaces=...)`): a task the new run lacks must not leave its old
    samples beside the new results.json. Only files the old index names are touched — never lm-eval's
    own `samples_<task>_<date>.jsonl` or anything else a user keeps there. An unreadable results.json
    names nothing (it is replaced, its files are left alone).
    """
    path = Path(out_dir) / RESULTS_FILE
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    tasks = old.get("results") if isinstance(old, dict) else None
    if not isinstance(tasks, dict):
        return []
    return [Path(out_dir) / f"samples_{t}.jsonl" for t in tasks if isinstance(t, str) and SAFE_NAME.fullmatch(t)]   # a path is never a name


def units_sha256(units) -> str:
    """sha256 of a unit sequence as JSON text, `[3, 14, 15]` (the content hash of a pre-tokenised utterance)."""
    return hashlib.sha256(int_list_json(units)).hexdigest()
