"""The leaderboard folder: schema validation, official task hashes, accepted submissions.

Layout of a board (default ./leaderboard):
    schema/results.schema.json    what a results.json must hold
    official_tasks.json           {"note": ..., "tasks": {task: {items_sha256, data_sha256, version}}}
    literature.csv                numbers reported in papers (see literature.py)
    submissions/<slug>/results.json      the submitted file, byte for byte
    submissions/<slug>/samples_<task>.jsonl  its samples, byte for byte (every number is re-derived from them)
    submissions/<slug>/submission.json   name, params/tokens/compute, sha256 of every file, data status
    ledger.jsonl                  append-only, hash-chained record of every acceptance and reproduction,
                                  with the sha256 of every file of each accepted folder (ledger.py)

Submitted files are only ever parsed as JSON; nothing read from them is executed or imported.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import jsonschema

from slmeval.io import default_mode, ensure_inside, safe_name, write_json
from slmeval.check.runs import RunError, parse_json_strict
from slmeval.leaderboard import evidence
from slmeval.leaderboard.ledger import ACCEPTED, PINNED, Ledger, LedgerError, folder_hashes
from slmeval.leaderboard.registered import config_problems, registered_tasks
from slmeval.leaderboard.quantities import Quantity, parse_quantity, training_compute

MAX_SUBMISSION_BYTES = 16 * 2**20
MAX_NAME_CHARS = 200
OFFICIAL = "official data"
UNOFFICIAL = "unofficial data"


class SubmissionError(ValueError):
    """A submission (or a board file) that cannot be accepted; the message names the file and field."""


@dataclass
class Submission:
    directory: Path
    meta: dict       # submission.json
    results: dict    # results.json
    reproduction: dict | None = None   # the ledger's latest reproduction of this very results.json, if any


@dataclass
class Board:
    root: Path

    @property
    def schema_path(self) -> Path:
        return self.root / "schema" / "results.schema.json"

    @property
    def official_path(self) -> Path:
        return self.root / "official_tasks.json"

    @property
    def literature_path(self) -> Path:
        return self.root / "literature.csv"

    @property
    def submissions_dir(self) -> Path:
        return self.root / "submissions"

    def _read_json(self, path: Path) -> dict:
        try:
            data = parse_json_strict(path.read_text(encoding="utf-8"), source=str(path))
        except OSError as exc:
            raise SubmissionError(f"{path}: cannot read ({exc.strerror})") from None
        except (RunError, UnicodeDecodeError) as exc:
            raise SubmissionError(str(exc)) from None
        if not isinstance(data, dict):
            raise SubmissionError(f"{path}: expected a JSON object")
        return data

    def schema(self) -> dict:
        return self._read_json(self.schema_path)

    def official_tasks(self) -> dict[str, dict]:
        tasks = self._read_json(self.official_path).get("tasks")
        if not isinstance(tasks, dict):
            raise SubmissionError(f"{self.official_path}: field 'tasks' must be an object of task -> hashes")
        return tasks

    def ledger(self) -> Ledger:
        try:
            return Ledger.read(self.root)
        except LedgerError as exc:
            raise SubmissionError(str(exc)) from None

    def submissions(self) -> list[Submission]:
        """Every accepted submission, each re-checked in full: its folder byte for byte as the ledger recorded
        it at acceptance (submission.json included), its name, its task configs against the registered
        tasks, and every number against its samples."""
        ledger = self.ledger()
        try:
            ledger.check_pins(self.official_path)
            ledger.check_folders(self.submissions_dir)
        except LedgerError as exc:
            raise SubmissionError(str(exc)) from None
        out = []
        if not self.submissions_dir.is_dir():
            return out
        registry = registered_tasks()
        for directory in sorted(p for p in self.submissions_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            meta = self._read_json(directory / "submission.json")
            results = self._read_json(directory / "results.json")
            validate_results(results, self.schema(), source=str(directory / "results.json"))
            try:   # stored files unchanged since acceptance, and every number still follows from them
                _check_stored_name(meta.get("name"))
                problems = config_problems(results, registry)
                if problems:
                    raise SubmissionError("; ".join(problems))
                samples = evidence.check_stored(directory, meta, results)
                evidence.rederive(results, samples, directory, source=str(directory))
            except (evidence.EvidenceError, ValueError) as exc:
                raise SubmissionError(f"stored submission {directory.name} refused: {exc}") from None
            reproduced = ledger.reproduction(directory.name, str(meta.get("results_sha256")))
            out.append(Submission(directory, meta, results, reproduced))
        return out


def validate_results(results: object, schema: dict, *, source: str) -> None:
    """Schema plus the cross-field rules a schema cannot say (one error listing every problem)."""
    validator = jsonschema.Draft202012Validator(schema)
    problems = [f"field {'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}"
                for e in sorted(validator.iter_errors(results), key=lambda e: list(map(str, e.absolute_path)))]
    if not problems and isinstance(results, dict):
        if results["config"].get("limit") is not None:
            problems.append(f"field config.limit: a partial run (--limit {results['config']['limit']}) is not "
                            "accepted; rerun without --limit")
        hashes = results["provenance"]["task_hashes"]
        for task in results["results"]:
            for section, where in ((results["configs"], "configs"), (results["versions"], "versions"),
                                   (results["n_samples"], "n_samples"), (hashes, "provenance.task_hashes")):
                if task not in section:
                    problems.append(f"field {where}: no entry for task {task!r}")
            if results["n_samples"].get(task) not in (None, results["results"][task]["n_pairs"]):
                problems.append(f"field n_samples.{task}: differs from results.{task}.n_pairs")
    if problems:
        shown = problems[:12] + ([f"... and {len(problems) - 12} more"] if len(problems) > 12 else [])
        raise SubmissionError(f"{source}: not a valid slmeval results.json:\n  " + "\n  ".join(shown))


def data_status(results: dict, official: dict[str, dict]) -> dict[str, dict]:
    """Per task: "official data" only when items, audio, item metadata (where pinned) and version equal the
    pinned values."""
    status = {}
    hashes = results["provenance"]["task_hashes"]
    for task in results["results"]:
        pin = official.get(task)
        ours = hashes[task]
        if not isinstance(pin, dict):
            reason = "task is not in official_tasks.json"
        elif not pin.get("items_sha256") or not pin.get("data_sha256") or pin.get("version") is None:
            reason = "official hashes not yet pinned"
        elif pin["items_sha256"] != ours["items_sha256"]:
            reason = "item list differs from the official task"
        elif pin["data_sha256"] != ours["data_sha256"]:
            reason = "audio differs from the official task data"
        elif pin.get("meta_sha256") and pin["meta_sha256"] != ours.get("meta_sha256"):
            reason = ("item metadata (types, voices, parts) differs from the official task" if ours.get("meta_sha256")
                      else "the run records no item-metadata hash (older slmeval); rerun to compare it")
        elif str(pin["version"]) != str(results["versions"][task]):
            reason = f"task version {results['versions'][task]} is not the official {pin['version']}"
        else:
            status[task] = {"status": OFFICIAL, "reason": ""}
            continue
        status[task] = {"status": UNOFFICIAL, "reason": reason}
    return status


def clean_name(name: str) -> str:
    """Names are shown as text; refuse empty, overlong, or control-character names."""
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        raise SubmissionError("--name: must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise SubmissionError(f"--name: at most {MAX_NAME_CHARS} characters, got {len(name)}")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name):
        raise SubmissionError("--name: must not contain control or format characters")
    return name


def _check_stored_name(name: object) -> None:
    """A stored name is shown as is: it must be one `add` would accept unchanged."""
    try:
        ok = isinstance(name, str) and clean_name(name) == name
    except SubmissionError as exc:
        raise SubmissionError(f"submission.json: name {name!r} is not a name `add` accepts as is "
                              f"({str(exc).removeprefix('--name: ')})") from None
    if not ok:
        raise SubmissionError(f"submission.json: name {name!r} is not a name `add` accepts as is")


def slug_for(name: str) -> str:
    readable = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")[:60] or "model"
    return f"{readable}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"


def _task_hash_key(results: dict) -> tuple:
    hashes = results["provenance"]["task_hashes"]
    return tuple(sorted((t, h["items_sha256"], h["data_sha256"]) for t, h in hashes.items() if t in results["results"]))


def _count(option: str, text: str | None) -> Quantity | None:
    try:
        return parse_quantity(text)
    except ValueError as exc:
        raise SubmissionError(f"{option}: {exc}") from None


def add_submission(board: Board, results_path: Path, name: str, *, params: str | None = None,
                   tokens: str | None = None, compute: str | None = None) -> Submission:
    """Validate RESULTS and store it under submissions/<slug>/ (atomically: a whole folder or nothing)."""
    results_path = Path(results_path)
    if results_path.is_dir():
        results_path = results_path / "results.json"
    try:
        raw = results_path.read_bytes() if results_path.stat().st_size <= MAX_SUBMISSION_BYTES else None
    except OSError as exc:
        raise SubmissionError(f"{results_path}: cannot read ({exc.strerror})") from None
    if raw is None:
        raise SubmissionError(f"{results_path}: larger than the {MAX_SUBMISSION_BYTES}-byte limit")
    try:
        results = parse_json_strict(raw.decode("utf-8"), source=str(results_path))
    except UnicodeDecodeError:
        raise SubmissionError(f"{results_path}: not UTF-8 text, so not a results.json") from None
    except RunError as exc:
        raise SubmissionError(str(exc)) from None
    validate_results(results, board.schema(), source=str(results_path))
    try:   # a verified number is one we re-derived: from the samples beside results.json
        samples = evidence.collect(results, results_path.parent)
        evidence.rederive(results, samples, results_path.parent, source=str(results_path))
    except (evidence.EvidenceError, ValueError) as exc:
        raise SubmissionError(str(exc)) from None
    problems = config_problems(results, registered_tasks())
    if problems:
        raise SubmissionError(f"{results_path}: task configs differ from the tasks this board registers:\n  "
                              + "\n  ".join(problems))
    name = clean_name(name)
    n, d, c = _count("--params", params), _count("--tokens", tokens), _count("--compute", compute)
    derived = training_compute(n, d)
    if c is None and derived is not None:
        c, compute_rule = derived, "6*N*D"
    else:
        compute_rule = "given" if c is not None else None

    existing = board.submissions()
    for other in existing:
        if str(other.meta.get("name", "")).casefold() == name.casefold():
            raise SubmissionError(f"--name: a submission named {other.meta['name']!r} already exists "
                                  f"({other.directory})")
    for other in existing:
        same_model = other.results["provenance"]["model_sha256"] == results["provenance"]["model_sha256"]
        if same_model and _task_hash_key(other.results) == _task_hash_key(results):
            raise SubmissionError(f"{results_path}: duplicate of {other.directory} (same model_sha256 and "
                                  f"same task hashes, submitted as {other.meta.get('name')!r})")

    status = data_status(results, board.official_tasks())
    meta = {
        "name": name,
        "params": n.value if n else None, "params_approx": bool(n and n.approx),
        "tokens": d.value if d else None, "tokens_approx": bool(d and d.approx),
        "compute": c.value if c else None, "compute_approx": bool(c and c.approx), "compute_rule": compute_rule,
        "added": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "results_sha256": hashlib.sha256(raw).hexdigest(),
        "files": evidence.file_hashes(raw, samples),
        "data_status_at_submission": status,
    }
    ledger = board.ledger()       # a broken ledger stops the submission before anything is written
    board.submissions_dir.mkdir(parents=True, exist_ok=True)
    final = ensure_inside(safe_name(slug_for(name), "submission folder"), board.submissions_dir, "submission folder")
    staging = Path(tempfile.mkdtemp(dir=board.submissions_dir, prefix=".incoming-"))
    try:
        for file_name, data in {"results.json": raw, **samples}.items():
            (staging / file_name).write_bytes(data)
            os.chmod(staging / file_name, default_mode())
        write_json(staging / "submission.json", meta)
        os.chmod(staging, default_mode(directory=True))   # mkdtemp's folder is private (0700); the board is shared
        os.rename(staging, final)   # one step: readers see the whole submission or none of it
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise SubmissionError(f"{final}: cannot store the submission ({exc.strerror})") from None
    try:   # accepted = recorded: the folder's every file, submission.json included, in the ledger
        ledger.append(ACCEPTED, final.name, name=name, results_sha256=meta["results_sha256"],
                      files=folder_hashes(final))
    except (OSError, LedgerError) as exc:
        shutil.rmtree(final, ignore_errors=True)   # never a folder the ledger does not know
        raise SubmissionError(f"{ledger.path}: cannot record the submission ({exc})") from None
    return Submission(final, meta, results)


def pin_hashes(board: Board, results_path: Path, tasks: list[str] | None = None, *,
               force: bool = False) -> dict[str, dict]:
    """Record a trusted run's task hashes as the official ones (refuses to change a pin unless force)."""
    results_path = Path(results_path)
    if results_path.is_dir():
        results_path = results_path / "results.json"
    results = board._read_json(results_path)
    validate_results(results, board.schema(), source=str(results_path))
    try:   # the item hash to pin must be the one its samples give, like every number the board shows
        evidence.rederive(results, evidence.collect(results, results_path.parent), results_path.parent,
                          source=str(results_path))
    except (evidence.EvidenceError, ValueError) as exc:
        raise SubmissionError(f"{exc} (nothing pinned)") from None
    ledger = board.ledger()
    try:
        ledger.check_pins(board.official_path)     # a hand-edited pin file is not the base of a new pin
    except LedgerError as exc:
        raise SubmissionError(str(exc)) from None
    document = board._read_json(board.official_path)
    pinned = document.setdefault("tasks", {})
    chosen = tasks or sorted(results["results"])
    changes = {}
    for task in chosen:
        if task not in results["results"]:
            raise SubmissionError(f"{results_path}: task {task!r} is not in this run")
        ours = results["provenance"]["task_hashes"][task]
        new_pin = {"items_sha256": ours["items_sha256"], "data_sha256": ours["data_sha256"],
                   "meta_sha256": ours.get("meta_sha256"), "version": results["versions"][task]}
        old = pinned.get(task) or {}
        if any(old.get(k) not in (None, v) for k, v in new_pin.items()) and not force:
            raise SubmissionError(f"{board.official_path}: task {task!r} is already pinned to other values; "
                                  f"pass --force to replace them")
        pinned[task] = new_pin
        changes[task] = new_pin
    write_json(board.official_path, document)
    try:
        ledger.append(PINNED, board.official_path.name, tasks=sorted(changes),
                      sha256=hashlib.sha256(board.official_path.read_bytes()).hexdigest())
    except (OSError, LedgerError) as exc:
        raise SubmissionError(f"{board.official_path} written but not recorded in the ledger ({exc}); run "
                              "pin-hashes again with --force") from None
    return changes
