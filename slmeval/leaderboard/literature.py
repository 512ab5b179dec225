"""Numbers reported in papers (leaderboard/literature.csv): shown beside verified runs, never mixed up."""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from slmeval.leaderboard.quantities import Quantity, parse_quantity, training_compute

SCORE_FAMILIES = ("sblimp", "sstorycloze", "tstorycloze")   # CSV columns, accuracy in percent
REQUIRED_COLUMNS = ("model", "category", "params", "train_tokens", *SCORE_FAMILIES, "source", "status")


class LiteratureError(ValueError):
    """literature.csv is malformed (names the row and the column)."""


@dataclass(frozen=True)
class ReportedRow:
    model: str
    category: str
    params: Quantity | None
    tokens: Quantity | None
    scores: dict[str, float]            # family -> accuracy in percent (only the families reported)
    extra: dict[str, str]               # other columns (genppl, auto_bleu, ...) kept verbatim
    source: str

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
            scores = {f: s for f in SCORE_FAMILIES
                      if (s := _score(record[f], f"{where} column {f}")) is not None}
            extra = {k: v for k, v in record.items() if k not in REQUIRED_COLUMNS and v}
            rows.append(ReportedRow(record["model"].strip(), record["category"].strip(), params, tokens, scores,
                                    extra, record["source"].strip()))
    return rows
