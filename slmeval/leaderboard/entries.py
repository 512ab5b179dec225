"""One flat row per (model, task): consistent rows from submissions, reported rows from papers.

A submitted row is *consistent*: every number follows from its samples, which is all a file can prove.
It is also *reproduced* when the board re-ran the model on the task data and every per-item credit
matched (`slmeval leaderboard reproduce`, recorded in the board's ledger).

These rows feed the page, the JSON export and the CSV export, so all three always agree.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict, dataclass, fields

from slmeval.leaderboard.literature import ReportedNumber, ReportedRow, reported_numbers
from slmeval.leaderboard.registered import placement, registered_tasks
from slmeval.leaderboard.store import Submission, data_status
from slmeval.results.verify import is_lm_eval, task_tie

CONSISTENT = "consistent"
REPORTED = "reported"
# Leaderboard *sections* (a task file's `leaderboard.section`), not metric families (a task file's `family`).
SECTION_ORDER = ("sblimp", "sstorycloze", "tstorycloze")
SECTION_TITLES = {"sblimp": "sBLIMP", "sstorycloze": "sStoryCloze", "tstorycloze": "tStoryCloze"}
FAMILY_ORDER, FAMILY_TITLES = SECTION_ORDER, SECTION_TITLES     # the names before issue 24 (aliases)
# leaderboard.json and leaderboard.csv keep the key they were first published with: `family` holds the section
PERSISTED_KEYS = {"section": "family"}


@dataclass
class Entry:
    kind: str                   # "consistent" (a submitted slmeval run) or "reported" (a paper's number)
    model: str
    section: str                # the leaderboard section: its task file's `leaderboard.section` (`family` in files)
    task: str
    acc: float | None           # percent
    acc_stderr: float | None    # percent
    acc_macro: float | None     # percent
    n_pairs: int | None
    params: float | None
    tokens: float | None
    compute: float | None       # training FLOPs
    compute_approx: bool
    data_status: str            # "official data" / "unofficial data" for verified rows, "" for reported
    data_note: str
    protocol: str
    tokenizer: str
    provenance: str             # slmeval version, git sha, date, model hash - or the paper's table
    category: str
    section_title: str = ""     # the task file's `leaderboard.title`
    mini: bool = False          # bundled toy data: its own section, listed after the benchmarks
    tokenizer_identity: str = ""   # the full tokenizer identity (`tokenizer` is the compact form)
    reproduced: str = ""        # consistent rows the board re-ran with every credit equal: the ledger date
    protocol_identity: str = ""    # every protocol field (`protocol` says it in words)

    @property
    def family(self) -> str:
        """The section, under the name leaderboard.json / leaderboard.csv give it (PERSISTED_KEYS)."""
        return self.section


def compact_tokenizer(identity: dict | None) -> str:
    """"hubert L11 K=500", "logmel 40 mels K=64": what a reader compares at a glance (hashes and
    every other field stay in `tokenizer_identity` and the exports)."""
    if not isinstance(identity, dict):
        return ""
    parts = [str(identity.get("kind", "?"))]
    if identity.get("layer") is not None:
        parts.append(f"L{identity['layer']}")
    if identity.get("n_mels") is not None:
        parts.append(f"{identity['n_mels']} mels")
    if identity.get("n_units") is not None:
        parts.append(f"K={identity['n_units']}")
    if identity.get("dedup") is False:
        parts.append("no dedup")
    return " ".join(parts)


_LONG_HEX = re.compile(r"^[0-9a-f]{40,}$")


def describe_protocol(protocol: dict | None, tie_value: float | None = None) -> str:
    from slmeval.leaderboard.present import describe_protocol as describe   # present.py imports this module

    return describe(protocol, tie_value)


def _summary(mapping: dict | None) -> str:
    """"k=v; ..." for the page; long hashes are shortened (the exports' source files keep them whole)."""
    if not isinstance(mapping, dict):
        return ""
    def show(value: object) -> str:
        if isinstance(value, (dict, list)):
            return json.dumps(value, sort_keys=True)
        text = str(value)
        return text[:12] + "..." if _LONG_HEX.match(text) else text
    return "; ".join(f"{k}={show(v)}" for k, v in sorted(mapping.items()))


def _tie(task: str, results: dict) -> float | None:
    """The tie credit this task was scored with: the one the run recorded, as verify re-derived the samples
    with it (for a task this board registers, `config_problems` has checked it is the registered task's)."""
    record, config = results["config"].get("protocol"), results["configs"].get(task)
    if is_lm_eval(record) or not isinstance(config, dict):
        return None
    return task_tie(record, config, task)[0]


def _pct(value: object) -> float | None:
    return 100.0 * float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def submitted_entries(submission: Submission, official: dict[str, dict], registry: dict) -> list[Entry]:
    results, meta = submission.results, submission.meta
    reproduced = str(submission.reproduction["at"]) if submission.reproduction else ""
    provenance = results["provenance"]
    status = data_status(results, official)   # against today's pins, which may be newer than the submission
    prov = (f"slmeval {provenance['slmeval_version']}"
            + (f" @ {str(provenance['git_sha'])[:12]}" if provenance.get("git_sha") else "")
            + f", {provenance['date']}, model sha256 {provenance['model_sha256'][:12]}")
    rows = []
    for task, metrics in sorted(results["results"].items()):
        # where a row is shown comes from the board's task registry, never from the submission's config
        section, title, mini = placement(task, registry)
        rows.append(Entry(
            kind=CONSISTENT, model=str(meta.get("name", "")), section=section, task=task,
            acc=_pct(metrics["acc"]), acc_stderr=_pct(metrics.get("acc_stderr")),
            acc_macro=_pct(metrics.get("acc_macro")), n_pairs=metrics["n_pairs"],
            params=meta.get("params"), tokens=meta.get("tokens"), compute=meta.get("compute"),
            compute_approx=bool(meta.get("compute_approx")),
            data_status=status[task]["status"], data_note=status[task]["reason"],
            protocol=describe_protocol(results["config"].get("protocol"), _tie(task, results)),
            protocol_identity=_summary(results["config"].get("protocol")),
            tokenizer=compact_tokenizer(results["config"].get("tokenizer")),
            provenance=prov, category="", section_title=title, mini=mini,
            tokenizer_identity=_summary(results["config"].get("tokenizer")), reproduced=reproduced))
    return rows


def reported_entries(number: ReportedNumber) -> Entry:
    compute = number.compute
    return Entry(kind=REPORTED, model=number.model, section=number.section, task=f"{number.section} (as reported)",
                 acc=number.score, acc_stderr=None, acc_macro=None, n_pairs=None,
                 params=number.params.value if number.params else None,
                 tokens=number.tokens.value if number.tokens else None,
                 compute=compute.value if compute else None, compute_approx=bool(compute and compute.approx),
                 data_status="", data_note="", protocol="", tokenizer="", provenance=number.citation,
                 category=number.category, section_title=SECTION_TITLES.get(number.section, number.section))


def build_entries(submissions: list[Submission], literature: list[ReportedRow],
                  official: dict[str, dict]) -> list[Entry]:
    registry = registered_tasks()
    rows = [e for s in submissions for e in submitted_entries(s, official, registry)]
    rows += [reported_entries(n) for n in reported_numbers(literature)]
    return rows


def sections(entries: list[Entry]) -> list[str]:
    """Section keys: the benchmarks papers report first, then other tasks, then bundled mini tasks."""
    present = {e.section for e in entries}
    mini = {e.section for e in entries if e.mini}
    rest = present - set(SECTION_ORDER)
    return [s for s in SECTION_ORDER if s in present] + sorted(rest - mini) + sorted(rest & mini)


families = sections     # the name before issue 24 (alias)


def _persisted(entry: Entry) -> dict:
    return {PERSISTED_KEYS.get(k, k): v for k, v in asdict(entry).items()}


def to_json(entries: list[Entry], generated: str) -> str:
    return json.dumps({"generated": generated, "accuracy_unit": "percent", "compute_unit": "FLOPs (6*N*D)",
                       "entries": [_persisted(e) for e in entries]}, indent=2, sort_keys=True, allow_nan=False)


def _csv_cell(value: object) -> object:
    # Spreadsheet programs run cells that start with these as formulas; submitted names are untrusted.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def to_csv(entries: list[Entry]) -> str:
    buffer = io.StringIO()
    names = [f.name for f in fields(Entry)]
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([PERSISTED_KEYS.get(n, n) for n in names])
    for entry in entries:
        writer.writerow([_csv_cell(getattr(entry, n)) for n in names])
    return buffer.getvalue()
