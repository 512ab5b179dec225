"""`slmeval leaderboard reproduce ENTRY`: the board runs the submitted model itself.

A consistent submission proves only that its numbers follow from its samples; anyone can write samples.
Reproducing re-runs the model — a Hub id at the recorded commit, or a local folder the board maintainer
holds (its files must hash to the recorded `model_sha256`) — on the task data the maintainer holds, with
the recorded protocol, tokenizer (`--tokenizer`, else rebuilt from what the run recorded: a preset, a spec) and
model arguments, and compares every per-item credit with the
submitted one. Only when the model, the task data (items, audio, item metadata; the official pins where
pinned), the protocol and the tokenizer are the recorded ones and every credit matches is the entry
marked *reproduced*, in the board's ledger, for that very results.json; otherwise each difference is listed
and nothing is recorded.
"""
from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Sequence

from slmeval.io import read_jsonl
from slmeval.leaderboard.ledger import REPRODUCED
from slmeval.leaderboard.store import Board, Submission, SubmissionError
from slmeval.scoring.protocol import Protocol
from slmeval.units import TokenizerError
from slmeval.results.verify import LM_EVAL

MAX_LISTED = 20


@dataclass
class Reproduction:
    slug: str
    model: str
    reproduced: bool
    differences: list[str] = field(default_factory=list)
    n_items: int = 0
    record: dict | None = None     # the ledger record, when reproduced


def find_entry(board: Board, entry: str) -> Submission:
    """A submission by folder name (slug) or by its shown name (case-insensitive)."""
    submissions = board.submissions()     # each re-checked in full: ledger, hashes, numbers
    for sub in submissions:
        if entry == sub.directory.name or str(sub.meta.get("name", "")).casefold() == entry.casefold():
            return sub
    known = ", ".join(sorted(s.directory.name for s in submissions)) or "none"
    raise SubmissionError(f"ENTRY {entry!r}: no accepted submission has that folder name or name (accepted: {known})")


def model_reference(sub: Submission, model: str | None) -> str:
    """What to load: the maintainer's folder, else the Hub id at the commit the run recorded."""
    if model is not None:
        return model
    hub = sub.results["provenance"].get("model_hub") or sub.results["config"].get("hub")
    if isinstance(hub, dict) and isinstance(hub.get("repo_id"), str) and isinstance(hub.get("commit_sha"), str):
        return f"{hub['repo_id']}@{hub['commit_sha']}"
    raise SubmissionError(f"{sub.directory.name}: the model was the local folder {sub.results['config']['model']!r} "
                          "on the submitter's machine, not a Hub id at a commit; pass --model with a folder holding "
                          f"the same files (model sha256 {sub.results['provenance']['model_sha256'][:12]}...)")


def protocol_arguments(record: dict) -> tuple[str, dict[str, str]]:
    """(preset name, --protocol-args) that rebuild the recorded protocol (checked again after the run)."""
    from slmeval.scoring.protocol import get_protocol

    base = str(record.get("name", "")).split("+", 1)[0]
    try:
        preset = get_protocol(base)
    except ValueError as exc:
        raise SubmissionError(f"config.protocol.name {record.get('name')!r}: {exc}") from None
    args: dict[str, str] = {}
    # The fields the user set: recorded since issue 24 (`overridden`, which decides whether a task file's
    # tie rule applies), else those that differ from today's preset. A cuervo run recorded before then
    # carries the preset's former {voice_averaged: 0.5}: rebuilt as that override, it credits every task's
    # ties as the run did.
    given = record.get("overridden")
    for f in fields(Protocol):
        if f.name in ("name", "overridden") or f.name not in record:
            continue
        if isinstance(given, list) and f.name not in given:
            continue
        if not isinstance(given, list) and record[f.name] == getattr(preset, f.name):
            continue
        value = record[f.name]
        if isinstance(value, bool):
            args[f.name] = "true" if value else "false"
        elif isinstance(value, dict):
            args[f.name] = ";".join(f"{k}:{v!r}" for k, v in value.items())
        else:
            args[f.name] = repr(value) if isinstance(value, float) else str(value)
    return base, args


_PASS_TOKENIZER = ("pass --tokenizer with the one you hold (its identity is compared with the recorded one after "
                   "the run)")
_CHECKPOINT = "(saved with the checkpoint)"


def tokenizer_argument(sub: Submission, tokenizer: str | None) -> str | None:
    """`--tokenizer`, else the tokenizer the run recorded (results.json `provenance.setup.tokenizer`), rebuilt:
    the preset it was built from (with its overrides), a spec given to `--tokenizer`, or — saved with the
    checkpoint — the model folder's own unit_tokenizer.json (None: the re-run finds it the same way). What
    cannot be rebuilt is one error. Whatever is built, its identity must equal `config.tokenizer` (_compare)."""
    recorded = sub.results["config"].get("tokenizer")
    if tokenizer is not None or recorded is None:     # pre-tokenised tasks need none
        return tokenizer
    from slmeval.units import PRESETS

    name = sub.directory.name
    setup = sub.results.get("provenance", {}).get("setup")
    tok = setup.get("tokenizer") if isinstance(setup, dict) else None
    if not isinstance(tok, dict) or not isinstance(tok.get("spec"), str) or not tok["spec"]:
        kind = recorded.get("kind") if isinstance(recorded, dict) else None
        raise SubmissionError(f"{name}: results.json records the tokenizer's identity (kind {kind!r}) but not how it "
                              "was built (provenance.setup.tokenizer: a preset or a spec, recorded by runs of slmeval "
                              f"since tokenizer presets); {_PASS_TOKENIZER}")
    spec, origin = tok["spec"], str(tok.get("from") or "")
    source = tok.get("source") if isinstance(tok.get("source"), dict) else {}
    preset = source.get("preset")
    if isinstance(preset, str) and preset:            # a preset, named or from the recipe or a unit_tokenizer.json
        if preset.partition(":")[0] not in PRESETS:
            raise SubmissionError(f"{name}: the run's tokenizer is the preset {preset!r}, which is not installed "
                                  f"here (presets: {', '.join(PRESETS.names())}); install the package that provides "
                                  f"it, or {_PASS_TOKENIZER}")
        return preset
    if origin.endswith(_CHECKPOINT):                  # the model folder re-run holds the same file
        return None
    if origin == "--tokenizer":                       # a spec or folder: built here, or one error (reproduce)
        return spec
    raise SubmissionError(f"{name}: the run's tokenizer {spec!r} came from {origin or 'an unrecorded place'}, which "
                          f"cannot be rebuilt from the record; {_PASS_TOKENIZER}")


def _scoring(protocol: dict) -> dict:
    """A protocol record as far as it decides scores: its preset (a run recorded before issue 24 as
    `cuervo` is re-run as `cuervo+custom` with the former preset's family rule) and every field but
    `overridden` (whose effect, the tie of each task, the per-item credits compare)."""
    return {k: str(v).split("+", 1)[0] if k == "name" else v for k, v in protocol.items() if k != "overridden"}


def _compare(sub: Submission, new: dict, new_dir: Path, official: dict[str, dict]) -> tuple[list[str], int]:
    old = sub.results
    diffs: list[str] = []
    if new["provenance"]["model_sha256"] != old["provenance"]["model_sha256"]:
        diffs.append(f"model: the files loaded hash to {new['provenance']['model_sha256'][:12]}..., the submission "
                     f"records {old['provenance']['model_sha256'][:12]}... (not the submitted model)")
    recorded = old["config"]["protocol"]    # fields added to Protocol later are absent from older runs
    used = {k: new["config"]["protocol"].get(k) for k in recorded}
    if _scoring(used) != _scoring(recorded):
        diffs.append(f"config.protocol: the re-run used {used!r}, the submission records {recorded!r}")
    if new["config"].get("tokenizer") != old["config"].get("tokenizer"):
        diffs.append(f"config.tokenizer: the re-run used {new['config'].get('tokenizer')!r}, the submission "
                     f"records {old['config'].get('tokenizer')!r}")
    n_items = 0
    for task in sorted(old["results"]):
        if str(new["versions"][task]) != str(old["versions"][task]):
            diffs.append(f"{task}: task version {new['versions'][task]} here, {old['versions'][task]} submitted")
        ours, theirs = new["provenance"]["task_hashes"][task], old["provenance"]["task_hashes"][task]
        pin = official.get(task) or {}
        for name in ("items_sha256", "data_sha256", "meta_sha256"):
            if ours.get(name) != theirs.get(name):
                diffs.append(f"{task}: {name} of the task data here differs from the submission's (other data)")
            elif pin.get(name) and ours.get(name) != pin[name]:
                diffs.append(f"{task}: {name} of the task data here is not the official pin")
        mine = {str(s["id"]): s["correct"] for s in read_jsonl(new_dir / f"samples_{task}.jsonl")}
        submitted = {str(s["id"]): s["correct"]
                     for s in read_jsonl(sub.directory / f"samples_{task}.jsonl")}
        n_items += len(submitted)
        for item in sorted(set(mine) | set(submitted)):
            if item not in mine or item not in submitted:
                diffs.append(f"{task} id {item!r}: only in the {'re-run' if item in mine else 'submission'}")
            elif mine[item] != submitted[item]:
                diffs.append(f"{task} id {item!r}: submitted credit {submitted[item]!r}, re-run credit {mine[item]!r}")
    return diffs, n_items


def reproduce(board: Board, entry: str, *, model: str | None = None, tokenizer: str | None = None,
              include_path: Sequence[str | Path] = (), data_root: str | Path | None = None, device: str = "cpu",
              output: str | Path | None = None, progress: bool = False) -> Reproduction:
    """Re-run ENTRY's model and compare every per-item credit; record it in the ledger when all match."""
    from slmeval.evaluator import evaluate

    sub = find_entry(board, entry)
    config = sub.results["config"]
    if isinstance(config.get("protocol"), dict) and config["protocol"].get("name") == LM_EVAL:
        raise SubmissionError(f"{sub.directory.name}: a text run (lm-eval's scoring) is reproduced with "
                              "`slmeval text`, not here")
    rebuilt = tokenizer is None and config.get("tokenizer") is not None
    tokenizer = tokenizer_argument(sub, tokenizer)
    reference = model_reference(sub, model)
    base, args = protocol_arguments(config["protocol"])
    model_args = {k: str(v) for k, v in (config.get("model_args") or {}).items()
                  if k not in ("revision", "pretrained") and v is not None}
    official = board.official_tasks()
    with tempfile.TemporaryDirectory(prefix="slmeval-reproduce-") as scratch:
        out = Path(output) if output is not None else Path(scratch) / "run"
        try:
            new = evaluate(reference, sorted(sub.results["results"]), data_root=data_root, tokenizer=tokenizer,
                           protocol=base, protocol_args=args, model_args=model_args,
                           batch_size=int(config.get("batch_size") or 8), device=device,
                           dtype=str(config.get("dtype") or "float32"), output=out, include_path=list(include_path),
                           use_cache=False, progress=progress)
        except TokenizerError as err:   # raised while the run is set up, before any audio or forward
            if not rebuilt:
                raise
            shown = repr(tokenizer) if tokenizer else "the model's own unit_tokenizer.json"
            raise SubmissionError(f"{sub.directory.name}: the tokenizer the run recorded ({shown}) cannot be rebuilt "
                                  f"here ({err}); {_PASS_TOKENIZER}") from None
        diffs, n_items = _compare(sub, new, out, official)
        new_sha = hashlib.sha256((out / "results.json").read_bytes()).hexdigest()
    if diffs:
        shown = diffs[:MAX_LISTED] + ([f"... and {len(diffs) - MAX_LISTED} more"] if len(diffs) > MAX_LISTED else [])
        return Reproduction(sub.directory.name, reference, False, shown, n_items)
    from slmeval import __version__

    record = board.ledger().append(
        REPRODUCED, sub.directory.name, results_sha256=sub.meta["results_sha256"], model=reference,
        model_sha256=new["provenance"]["model_sha256"], rerun_results_sha256=new_sha, items=n_items,
        tasks=sorted(sub.results["results"]), slmeval_version=__version__, device=device)
    return Reproduction(sub.directory.name, reference, True, [], n_items, record)
