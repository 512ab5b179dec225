"""Reading an evaluation run (results.json + samples_<task>.jsonl) for the regression check.

Everything is parsed with `json` only; a file that is not what the documented format says is
refused with one error naming the file, the line or field, and what was expected.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from slmeval.io import ensure_inside, safe_name

RESULTS_NAME = "results.json"
CORRECT_VALUES = (0.0, 0.5, 1.0)


class RunError(ValueError):
    """A run directory or file that cannot be used (names the file and what was expected)."""


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _constant_to_none(name: str) -> None:
    # NaN / Infinity are not JSON; a writer may still emit them for undefined stderr values.
    # They become null so that a schema can accept them where null is allowed and refuse them elsewhere.
    return None


def parse_json_strict(text: str, *, source: str) -> object:
    """`json.loads` that refuses duplicate keys and maps NaN/Infinity to None."""
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_constant_to_none)
    except (ValueError, RecursionError) as exc:
        raise RunError(f"{source}: not valid JSON ({exc})") from None


def load_json_object(path: Path, *, max_bytes: int = 64 * 2**20) -> dict:
    """Read a JSON file that must hold one object."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise RunError(f"{path}: cannot read ({exc.strerror})") from None
    if size > max_bytes:
        raise RunError(f"{path}: {size} bytes, larger than the {max_bytes}-byte limit")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RunError(f"{path}: not UTF-8 text") from None
    data = parse_json_strict(text, source=str(path))
    if not isinstance(data, dict):
        raise RunError(f"{path}: expected a JSON object at the top level, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class Sample:
    id: str
    positive_key: str
    negative_key: str
    correct: float  # 1.0 positive preferred, 0.5 tie, 0.0 negative preferred (or a tie, under tie value 0)
    tie: bool = False  # the two scores are equal (counted whatever value the protocol gives a tie)


def items_sha256(samples: list[Sample]) -> str:
    """The documented item hash: sha256 of the sorted "<id>\\t<positive_key>\\t<negative_key>\\n" lines."""
    lines = sorted(f"{s.id}\t{s.positive_key}\t{s.negative_key}\n" for s in samples)
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


@dataclass
class Run:
    """One run: its results.json and the directory its samples files sit in."""

    directory: Path
    results_path: Path
    results: dict

    @property
    def tasks(self) -> list[str]:
        return sorted(self.results["results"])

    def task_hashes(self, task: str) -> dict:
        hashes = (self.results.get("provenance") or {}).get("task_hashes") or {}
        entry = hashes.get(task) or {}
        return entry if isinstance(entry, dict) else {}

    def accuracy(self, task: str) -> float | None:
        value = (self.results["results"].get(task) or {}).get("acc")
        return float(value) if isinstance(value, (int, float)) else None

    def samples_path(self, task: str) -> Path:
        try:   # the task name comes from results.json: it must not lead out of the run folder
            return ensure_inside(f"samples_{safe_name(task, 'task name')}.jsonl", self.directory, "samples file")
        except ValueError as exc:
            raise RunError(f"{self.results_path}: {exc}") from None

    def samples(self, task: str) -> list[Sample]:
        return read_samples(self.samples_path(task))

    def sample_records(self, task: str) -> list[dict]:
        """The samples file's lines as parsed objects (every field, for re-deriving the numbers)."""
        return [record for _, record in read_sample_records(self.samples_path(task))]


def load_run(path: str | Path) -> Run:
    """A run output directory (results.json + samples_<task>.jsonl) or a results.json path."""
    path = Path(path)
    results_path = path / RESULTS_NAME if path.is_dir() else path
    if not results_path.exists():
        raise RunError(f"{results_path}: not found (expected a run directory holding {RESULTS_NAME}, "
                       f"or the path of a {RESULTS_NAME})")
    results = load_json_object(results_path)
    per_task = results.get("results")
    if not isinstance(per_task, dict) or not per_task:
        raise RunError(f"{results_path}: field 'results' must be a non-empty object of task -> metrics")
    for task, metrics in per_task.items():
        if not isinstance(metrics, dict):
            raise RunError(f"{results_path}: field results.{task} must be an object")
    return Run(directory=results_path.parent, results_path=results_path, results=results)


def read_sample_records(path: Path) -> list[tuple[str, dict]]:
    """(file:line, object) for every non-blank line of a samples file, parsed strictly."""
    if not path.exists():
        raise RunError(f"{path}: samples file not found (the check pairs runs item by item and needs it)")
    records = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            record = parse_json_strict(line, source=where)
            if not isinstance(record, dict):
                raise RunError(f"{where}: expected a JSON object per line")
            records.append((where, record))
    return records


def read_samples(path: Path) -> list[Sample]:
    """Parse samples_<task>.jsonl; ids must be unique and `correct` one of 1, 0.5, 0."""
    samples: list[Sample] = []
    seen: set[str] = set()
    for where, record in read_sample_records(path):
        for field in ("id", "positive_key", "negative_key", "correct"):
            if field not in record:
                raise RunError(f"{where}: missing field {field!r}")
        correct = record["correct"]
        if isinstance(correct, bool) or not isinstance(correct, (int, float)) \
                or not any(math.isclose(correct, v) for v in CORRECT_VALUES):
            raise RunError(f"{where}: field 'correct' must be 1.0, 0.5 or 0.0, got {correct!r}")
        sample_id = str(record["id"])
        if sample_id in seen:
            raise RunError(f"{where}: duplicate id {sample_id!r}")
        seen.add(sample_id)
        # A tie is read off the scores where the file has them: under the cuervo preset a tie scores 0, not 0.5.
        pos, neg = record.get("positive_score"), record.get("negative_score")
        tie = pos == neg if isinstance(pos, (int, float)) and isinstance(neg, (int, float)) \
            else math.isclose(correct, 0.5)
        samples.append(Sample(sample_id, str(record["positive_key"]), str(record["negative_key"]),
                              float(correct), bool(tie)))
    if not samples:
        raise RunError(f"{path}: no samples")
    return samples
