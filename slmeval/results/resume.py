"""`--resume`: per-task results of an unfinished run, kept in `<output>/.partial/<task>.json`.

A saved task is reused only when everything that decides its numbers is unchanged: the settings and
the task definition (`fingerprint`: model files' hash, mapping, tokenizer identity, protocol, task
config) AND the data itself — its item list and the content hash of every utterance (`data_sha256`,
the same hash results.json records; the audio bytes are re-hashed, which costs a read of the files
but no decoding or model work). Each decision is explained in one line, and the reason is recorded in
results.json (`provenance.resumed`). A partial file that is not what slmeval writes (truncated by a
full disk, edited) is an error naming it: it is never silently trusted nor silently thrown away.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from slmeval.io import OutputError, atomic_write_text, ensure_inside, safe_name
from slmeval.results.samples import partial_text

PARTIAL_DIR = ".partial"
RUN_FIELDS = {"metrics": dict, "breakdowns": dict, "samples": list, "hashes": dict}


class PartialFileError(ValueError):
    pass


@dataclass(frozen=True)
class Decision:
    reuse: bool
    reason: str


class PartialStore:
    """The `.partial/` folder of one output directory."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.dir = self.out_dir / PARTIAL_DIR

    def path(self, task: str) -> Path:
        # relative to out_dir (ensure_inside joins it): `self.dir` would double a relative --output (out/out/.partial)
        return ensure_inside(Path(PARTIAL_DIR) / f"{safe_name(task, 'task name')}.json", self.out_dir,
                             "partial result file")

    def load(self, task: str) -> dict | None:
        """The saved record of `task` ({"fingerprint", "run"}), None when there is none."""
        path = self.path(task)
        if not path.is_file():
            return None
        hint = "delete it to recompute the task (or run without --resume)"
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise PartialFileError(f"{path}: not a complete partial result ({err}); it was probably cut short "
                                   f"by a full disk or edited; {hint}") from None
        run = saved.get("run") if isinstance(saved, dict) else None
        problems = [] if isinstance(saved, dict) and isinstance(saved.get("fingerprint"), str) else ["fingerprint"]
        if not isinstance(run, dict):
            problems.append("run")
        else:
            problems += [f"run.{k}" for k, typ in RUN_FIELDS.items() if not isinstance(run.get(k), typ)]
            hashes = run.get("hashes") if isinstance(run.get("hashes"), dict) else {}
            problems += [f"run.hashes.{k}" for k in ("items_sha256", "data_sha256") if not isinstance(hashes.get(k), str)]
            problems += [f"run.{k} (unknown field)" for k in run if k not in RUN_FIELDS and k != "warnings"]
        if problems:
            raise PartialFileError(f"{path}: not a partial result written by slmeval (missing or malformed: "
                                   f"{', '.join(problems)}); {hint}")
        return saved

    def save(self, task: str, fingerprint: str, run: dict) -> None:
        path = self.path(task)
        try:
            atomic_write_text(path, partial_text(fingerprint, run))   # samples spliced in, not re-encoded
        except OSError as err:
            raise OutputError(f"cannot write {path}: {err.strerror or err}; the results already in {self.out_dir} "
                              "are unchanged") from None

    def clean(self) -> None:
        """Called after results.json is written: the partial copies are no longer needed."""
        shutil.rmtree(self.dir, ignore_errors=True)


def decide(saved: dict, fingerprint: str, items_sha256: str, data_sha256: str, meta_sha256: str) -> Decision:
    """Reuse `saved` only if settings, task definition, items, data and item metadata are all unchanged."""
    hashes = saved["run"]["hashes"]
    if saved["fingerprint"] != fingerprint:
        return Decision(False, "recomputed: the model, tokenizer, protocol or task definition changed since it was saved")
    if hashes["items_sha256"] != items_sha256:
        return Decision(False, f"recomputed: the item list changed (items_sha256 {hashes['items_sha256'][:12]}… "
                               f"saved, {items_sha256[:12]}… now)")
    if hashes["data_sha256"] != data_sha256:
        return Decision(False, f"recomputed: the audio changed (data_sha256 {hashes['data_sha256'][:12]}… saved, "
                               f"{data_sha256[:12]}… now)")
    if hashes.get("meta_sha256") != meta_sha256:   # absent in partials of older versions: recompute
        return Decision(False, "recomputed: the item metadata (types, voices, parts) changed since it was saved, "
                               "and the metrics group by it")
    return Decision(True, f"reused from {PARTIAL_DIR}/: same settings, task definition, items, metadata and audio "
                          f"(data_sha256 {data_sha256[:12]}…)")
