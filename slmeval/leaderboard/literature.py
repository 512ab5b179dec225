"""Numbers reported in papers (leaderboard/literature.csv): shown beside verified runs, never mixed up.

Two papers often reprint the same model's number under different names (Slamming's "TWIST-13B" is
Cuervo & Marxer's "TWIST warm-init 13B"). The optional column `same_model_as` says so explicitly — a
row naming another row's model — so the page shows one row per model and number citing both tables;
where the papers' numbers differ, each keeps its own row. Names are never matched by guesswork.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from slmeval.leaderboard.quantities import Quantity, parse_quantity, training_compute

SCORE_SECTIONS = ("sblimp", "sstorycloze", "tstorycloze")   # CSV columns (leaderboard sections), accuracy in percent
SCORE_FAMILIES = SCORE_SECTIONS     # the name before issue 24 (alias)
REQUIRED_COLUMNS = ("model", "category", "params", "train_tokens", *SCORE_SECTIONS, "source", "status")
ALIAS_COLUMN = "same_model_as"     # optional: the model name this row reprints under another name


class LiteratureError(ValueError):
    """literature.csv is malformed (names the row and the column)."""


@dataclass(frozen=True)
class ReportedRow:
    model: str
    category: str
    params: Quantity | None
    tokens: Quantity | None
    scores: dict[str, float]            # section -> accuracy in percent (only the benchmarks reported)
    extra: dict[str, str]               # other columns (genppl, auto_bleu, ...) kept verbatim
    source: str
    same_as: str = ""                   # `same_model_as`: this row's model under the name another row uses

    @property
    def canonical(self) -> str:
        return self.same_as or self.model

    @property
    def compute(self) -> Quantity | None:
        return training_compute(self.params, self.tokens)


def _score(value: str, where: str) -> float | None:
    if not value.strip():
        return None
    try:
        score = float(value)
    except ValueError:
        raise LiteratureError(f"{where}: expected an accuracy in percent, got {value!r}") from None
    if not (math.isfinite(score) and 0.0 <= score <= 100.0):
        raise LiteratureError(f"{where}: accuracy {score} is outside 0..100 (the file uses percent)")
    return score


def load_literature(path: Path) -> list[ReportedRow]:
    """Parse literature.csv; every row must name its source and be marked "reported"."""
    rows: list[ReportedRow] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise LiteratureError(f"{path}: missing column(s) {', '.join(missing)}")
        for line_no, record in enumerate(reader, start=2):
            where = f"{path}:{line_no}"
            if None in record:
                raise LiteratureError(f"{where}: more cells than header columns")
            if record["status"] != "reported":
                raise LiteratureError(f"{where}: column status must be 'reported', got {record['status']!r}")
            if not record["model"].strip() or not record["source"].strip():
                raise LiteratureError(f"{where}: every row needs a model name and a source")
            try:
                params = parse_quantity(record["params"])
                tokens = parse_quantity(record["train_tokens"])
            except ValueError as exc:
                raise LiteratureError(f"{where}: {exc}") from None
            scores = {f: s for f in SCORE_SECTIONS
                      if (s := _score(record[f], f"{where} column {f}")) is not None}
            extra = {k: v for k, v in record.items() if k not in (*REQUIRED_COLUMNS, ALIAS_COLUMN) and v}
            rows.append(ReportedRow(record["model"].strip(), record["category"].strip(), params, tokens, scores,
                                    extra, record["source"].strip(), (record.get(ALIAS_COLUMN) or "").strip()))
    names = {r.model for r in rows}
    for line_no, row in enumerate(rows, start=2):
        if row.same_as and (row.same_as == row.model or row.same_as not in names):
            raise LiteratureError(f"{path}:{line_no}: column {ALIAS_COLUMN} must name another row's model, "
                                  f"got {row.same_as!r}")
    return rows


@dataclass(frozen=True)
class ReportedNumber:
    """One model's number on one benchmark, with every paper table that reports it."""
    model: str                          # the canonical name (the row `same_model_as` points to)
    section: str                        # the leaderboard section (benchmark) the number is for
    score: float
    category: str
    params: Quantity | None             # the first source's; others that differ are named in `citation`
    tokens: Quantity | None
    sources: tuple[str, ...]
    citation: str                       # "Slamming … Table 3; Cuervo & Marxer 2024 Table 3 (as “TWIST warm-init 13B”)"

    @property
    def compute(self) -> Quantity | None:
        return training_compute(self.params, self.tokens)


def reported_numbers(rows: list[ReportedRow]) -> list[ReportedNumber]:
    """Rows merged per (model, benchmark, number), in file order; a number two tables report alike
    is one entry citing both."""
    groups: dict[tuple[str, str, float], list[ReportedRow]] = {}
    for row in rows:
        for section in SCORE_SECTIONS:
            if section in row.scores:
                groups.setdefault((row.canonical, section, row.scores[section]), []).append(row)
    out = []
    for (model, section, score), group in groups.items():
        first = group[0]
        params = next((r.params for r in group if r.params), None)
        tokens = next((r.tokens for r in group if r.tokens), None)
        parts = []
        for r in group:
            notes = [f"as “{r.model}”"] if r.model != model else []
            if r.params and params and r.params != params:
                notes.append(f"{r.params} params")
            if r.tokens and tokens and r.tokens != tokens:
                notes.append(f"{r.tokens} tokens")
            parts.append(r.source + (f" ({', '.join(notes)})" if notes else ""))
        out.append(ReportedNumber(model, section, score, first.category, params, tokens,
                                  tuple(r.source for r in group), "; ".join(parts)))
    return out
