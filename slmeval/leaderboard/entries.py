"""One flat row per (model, task): verified rows from submissions, reported rows from papers.

These rows feed the page, the JSON export and the CSV export, so all three always agree.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict, dataclass, fields

from slmeval.leaderboard.literature import SCORE_FAMILIES, ReportedRow
from slmeval.leaderboard.store import Submission, data_status

VERIFIED = "verified"
REPORTED = "reported"
FAMILY_ORDER = ("sblimp", "sstorycloze", "tstorycloze")
FAMILY_TITLES = {"sblimp": "sBLIMP", "sstorycloze": "sStoryCloze", "tstorycloze": "tStoryCloze"}


@dataclass
class Entry:
    kind: str                   # "verified" (slmeval results.json) or "reported" (a paper's number)
    model: str
    family: str
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


def family_of(task: str, config: dict | None) -> str:
    """The leaderboard section: the benchmark named in the task (sBLIMP, sStoryCloze, tStoryCloze,
    as papers report them), else the task config's family. The task registry's family is coarser
    ("storycloze" covers sStoryCloze and tStoryCloze), so the name is consulted first."""
    for known in ("sblimp", "tstorycloze", "sstorycloze"):
        if known in task.lower():
            return known
    family = (config or {}).get("family")
    if isinstance(family, str) and family.strip():
        return family.strip().lower()
    return task.lower()


_LONG_HEX = re.compile(r"^[0-9a-f]{40,}$")


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


def _pct(value: object) -> float | None:
    return 100.0 * float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def verified_entries(submission: Submission, official: dict[str, dict]) -> list[Entry]:
    results, meta = submission.results, submission.meta
    provenance = results["provenance"]
    status = data_status(results, official)   # against today's pins, which may be newer than the submission
    prov = (f"slmeval {provenance['slmeval_version']}"
            + (f" @ {str(provenance['git_sha'])[:12]}" if provenance.get("git_sha") else "")
            + f", {provenance['date']}, model sha256 {provenance['model_sha256'][:12]}")
    rows = []
    for task, metrics in sorted(results["results"].items()):
        config = results["configs"].get(task)
        rows.append(Entry(
            kind=VERIFIED, model=str(meta.get("name", "")), family=family_of(task, config), task=task,
            acc=_pct(metrics["acc"]), acc_stderr=_pct(metrics.get("acc_stderr")),
            acc_macro=_pct(metrics.get("acc_macro")), n_pairs=metrics["n_pairs"],
            params=meta.get("params"), tokens=meta.get("tokens"), compute=meta.get("compute"),
            compute_approx=bool(meta.get("compute_approx")),
            data_status=status[task]["status"], data_note=status[task]["reason"],
            protocol=_summary(results["config"].get("protocol")), tokenizer=_summary(results["config"].get("tokenizer")),
            provenance=prov, category=""))
    return rows


def reported_entries(row: ReportedRow) -> list[Entry]:
    compute = row.compute
    return [Entry(kind=REPORTED, model=row.model, family=family, task=f"{family} (as reported)",
                  acc=row.scores[family], acc_stderr=None, acc_macro=None, n_pairs=None,
                  params=row.params.value if row.params else None, tokens=row.tokens.value if row.tokens else None,
                  compute=compute.value if compute else None, compute_approx=bool(compute and compute.approx),
                  data_status="", data_note="", protocol="", tokenizer="", provenance=row.source,
                  category=row.category)
            for family in SCORE_FAMILIES if family in row.scores]


def build_entries(submissions: list[Submission], literature: list[ReportedRow],
                  official: dict[str, dict]) -> list[Entry]:
    rows = [e for s in submissions for e in verified_entries(s, official)]
    rows += [e for r in literature for e in reported_entries(r)]
    return rows


def families(entries: list[Entry]) -> list[str]:
    present = {e.family for e in entries}
    return [f for f in FAMILY_ORDER if f in present] + sorted(present - set(FAMILY_ORDER))


def to_json(entries: list[Entry], generated: str) -> str:
    return json.dumps({"generated": generated, "accuracy_unit": "percent", "compute_unit": "FLOPs (6*N*D)",
                       "entries": [asdict(e) for e in entries]}, indent=2, sort_keys=True, allow_nan=False)


def _csv_cell(value: object) -> object:
    # Spreadsheet programs run cells that start with these as formulas; submitted names are untrusted.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def to_csv(entries: list[Entry]) -> str:
    buffer = io.StringIO()
    names = [f.name for f in fields(Entry)]
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for entry in entries:
        writer.writerow([_csv_cell(getattr(entry, n)) for n in names])
    return buffer.getvalue()
