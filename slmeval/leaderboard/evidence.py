"""A submission's evidence: its samples files, their hashes, and the re-derivation of every number.

`leaderboard add` reads `samples_<task>.jsonl` beside the submitted results.json (each task name must
be a safe file name), re-derives every metric and every sample's credit from them
(`slmeval.results.verify`), and stores the files with their sha256 in submission.json. `leaderboard build`
checks each stored file against its recorded sha256 and re-derives again, so a number edited after
acceptance — in results.json, in a samples line, or in submission.json's list of files — stops the
build with the submission and the file named.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from slmeval.check.runs import RunError, parse_json_strict
from slmeval.io import ensure_inside, safe_name
from slmeval.results.verify import VerificationError, verify_run

MAX_SAMPLES_BYTES = 512 * 2**20     # full sBLIMP (63k voice-pairs) is ~40 MiB
RESULTS_NAME = "results.json"


class EvidenceError(ValueError):
    """Samples that are missing, unreadable, or that do not give the recorded numbers."""


def samples_name(task: object) -> str:
    return f"samples_{safe_name(task, 'task name')}.jsonl"


def read_file(path: Path, limit: int) -> bytes:
    try:
        if path.stat().st_size > limit:
            raise EvidenceError(f"{path}: larger than the {limit}-byte limit")
        return path.read_bytes()
    except FileNotFoundError:
        raise EvidenceError(f"{path}: not found (a verified number needs its samples: submit the run "
                            "folder with results.json and every samples_<task>.jsonl)") from None
    except OSError as exc:
        raise EvidenceError(f"{path}: cannot read ({exc.strerror})") from None


def parse_samples(raw: bytes, source: str) -> list[dict]:
    """Strict JSONL (duplicate keys and non-objects refused), errors naming the file and line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EvidenceError(f"{source}: not UTF-8 text") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = parse_json_strict(line, source=f"{source}:{number}")
        except RunError as exc:
            raise EvidenceError(str(exc)) from None
        if not isinstance(row, dict):
            raise EvidenceError(f"{source}:{number}: expected a JSON object")
        rows.append(row)
    return rows


def collect(results: dict, folder: Path) -> dict[str, bytes]:
    """The raw samples file of every task of `results`, read from `folder` (file name -> bytes)."""
    files = {}
    for task in results["results"]:
        name = samples_name(task)
        files[name] = read_file(ensure_inside(name, folder, "samples file"), MAX_SAMPLES_BYTES)
    return files


def rederive(results: dict, files: dict[str, bytes], folder: Path, *, source: str) -> None:
    """EvidenceError unless every number of `results` follows from the samples in `files`."""
    samples, where = {}, {}
    for task in results["results"]:
        name = samples_name(task)
        where[task] = str(folder / name)
        if name in files:
            samples[task] = parse_samples(files[name], where[task])
    try:
        verify_run(results, samples, source=source, sample_sources=where)
    except VerificationError as exc:
        raise EvidenceError(str(exc)) from None


def file_hashes(results_raw: bytes, files: dict[str, bytes]) -> dict[str, str]:
    return {RESULTS_NAME: hashlib.sha256(results_raw).hexdigest(),
            **{name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}}


def check_stored(directory: Path, meta: dict, results: dict) -> dict[str, bytes]:
    """Every file submission.json lists is there with the recorded sha256, and every task's samples are
    listed; returns the samples files (name -> bytes)."""
    recorded = meta.get("files")
    if not isinstance(recorded, dict) or RESULTS_NAME not in recorded:
        raise EvidenceError(f"{directory / 'submission.json'}: no 'files' list with sha256 sums (a submission "
                            "made without its samples cannot be verified; submit the run again)")
    wanted = {RESULTS_NAME, *(samples_name(t) for t in results["results"])}
    unlisted = sorted(wanted - set(recorded))
    if unlisted:
        raise EvidenceError(f"{directory / 'submission.json'}: files {unlisted} are not listed with a sha256")
    files = {}
    for name, digest in sorted(recorded.items()):
        path = ensure_inside(safe_name(name, "stored file name"), directory, "stored file")
        data = read_file(path, MAX_SAMPLES_BYTES)
        if hashlib.sha256(data).hexdigest() != digest:
            raise EvidenceError(f"{path}: sha256 differs from the one recorded when the submission was accepted "
                                "(the file was changed afterwards)")
        if name != RESULTS_NAME:
            files[name] = data
    return files
