"""Text sources for spoken benchmarks: StoryCloze stories and minimal pairs.

Stories come from the StoryCloze CSV (`InputStoryid`, `InputSentence1`-`4`, `RandomFifthSentenceQuiz1`/`2`,
`AnswerRightEnding`) or a JSONL of `{id, context, positive, negative}`. Minimal pairs come from a JSONL
(or CSV) of `{id, type, subtype, good, bad}`. Every malformed row raises `SourceError` naming the file,
the line and the field.
"""
from __future__ import annotations

import csv
import random
from dataclasses import dataclass, replace
from pathlib import Path

from slmeval.io import read_jsonl_located


class SourceError(ValueError):
    """A text source that does not match its format; the message names file, line and field."""


@dataclass(frozen=True)
class Story:
    id: str
    context: str          # the first four sentences
    positive: str         # the right ending
    negative: str         # the wrong ending (sStoryCloze) or another story's ending (tStoryCloze)


@dataclass(frozen=True)
class MinimalPair:
    id: str
    type: str
    subtype: str
    good: str
    bad: str


STORYCLOZE_COLUMNS = ("InputStoryid", "InputSentence1", "InputSentence2", "InputSentence3", "InputSentence4",
                      "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding")


def _text(value: object, where: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SourceError(f"{where}: field {field!r} must be a non-empty string, got {value!r}")
    return " ".join(value.split())


def _read_jsonl(path: Path) -> list[tuple[str, dict]]:
    return read_jsonl_located(path, SourceError)


def _read_csv(path: Path, required: tuple[str, ...]) -> list[tuple[str, dict]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise SourceError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(required)}")
        # line numbers count the header as line 1
        return [(f"{path}:{n}", row) for n, row in enumerate(reader, 2)]


def _check_unique(ids: list[tuple[str, str]], path: Path) -> None:
    seen: dict[str, str] = {}
    for where, key in ids:
        if key in seen:
            raise SourceError(f"{where}: duplicate id {key!r} (first seen at {seen[key]})")
        seen[key] = where


def read_stories(path: str | Path) -> list[Story]:
    """StoryCloze CSV or stories JSONL → stories in file order, negative = the wrong ending."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: story source not found")
    stories, ids = [], []
    if path.suffix.lower() == ".csv":
        for where, row in _read_csv(path, STORYCLOZE_COLUMNS):
            story_id = _text(row["InputStoryid"], where, "InputStoryid")
            context = " ".join(_text(row[f"InputSentence{i}"], where, f"InputSentence{i}") for i in range(1, 5))
            endings = [_text(row[f"RandomFifthSentenceQuiz{i}"], where, f"RandomFifthSentenceQuiz{i}") for i in (1, 2)]
            right = (row["AnswerRightEnding"] or "").strip()
            if right not in ("1", "2"):
                raise SourceError(f"{where}: field 'AnswerRightEnding' must be 1 or 2, got {right!r}")
            k = int(right) - 1
            stories.append(Story(story_id, context, endings[k], endings[1 - k]))
            ids.append((where, story_id))
    elif path.suffix.lower() in (".jsonl", ".json"):
        for where, row in _read_jsonl(path):
            story_id = row.get("id")
            if not isinstance(story_id, (str, int)) or str(story_id).strip() == "":
                raise SourceError(f"{where}: field 'id' must be a non-empty string or integer, got {story_id!r}")
            story_id = str(story_id)
            stories.append(Story(story_id, _text(row.get("context"), where, "context"),
                                 _text(row.get("positive"), where, "positive"),
                                 _text(row.get("negative"), where, "negative")))
            ids.append((where, story_id))
    else:
        raise SourceError(f"{path}: unknown story source format; expected a StoryCloze .csv or a .jsonl "
                          "of {id, context, positive, negative}")
    if not stories:
        raise SourceError(f"{path}: no stories")
    _check_unique(ids, path)
    return stories


def topic_negatives(stories: list[Story], seed: int = 0) -> list[Story]:
    """tStoryCloze: each story's negative becomes the right ending of another story, drawn with `seed`.

    Draws run in source order from one `random.Random(seed)`, so the result depends only on the source
    and the seed (never on sharding). A draw whose text equals the story's own right ending is redrawn,
    so a negative is never the story's own ending even when two stories share an ending.
    """
    n = len(stories)
    distinct = {s.positive for s in stories}
    if n < 2 or len(distinct) < 2:
        raise SourceError("tStoryCloze needs at least two stories with different endings to draw negatives from")
    rng = random.Random(seed)
    out = []
    for i, story in enumerate(stories):
        while True:
            j = rng.randrange(n - 1)
            j = j + 1 if j >= i else j          # uniform over the other stories
            if stories[j].positive != story.positive:
                break
        out.append(replace(story, negative=stories[j].positive))
    return out


def read_minimal_pairs(path: str | Path) -> list[MinimalPair]:
    """JSONL (or CSV) of {id, type, subtype, good, bad} → pairs in file order; (type, subtype, id) unique."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: minimal-pair source not found")
    fields = ("id", "type", "subtype", "good", "bad")
    if path.suffix.lower() == ".csv":
        rows = _read_csv(path, fields)
    elif path.suffix.lower() in (".jsonl", ".json"):
        rows = _read_jsonl(path)
    else:
        raise SourceError(f"{path}: unknown minimal-pair format; expected .jsonl or .csv with columns "
                          f"{', '.join(fields)}")
    pairs, keys = [], []
    for where, row in rows:
        raw_id = row.get("id")
        if isinstance(raw_id, int):
            raw_id = str(raw_id)
        pair = MinimalPair(_text(raw_id, where, "id"), _text(row.get("type"), where, "type"),
                           _text(row.get("subtype"), where, "subtype"), _text(row.get("good"), where, "good"),
                           _text(row.get("bad"), where, "bad"))
        if pair.good == pair.bad:
            raise SourceError(f"{where}: 'good' and 'bad' are the same sentence")
        pairs.append(pair)
        keys.append((where, f"{pair.type}/{pair.subtype}/{pair.id}"))
    if not pairs:
        raise SourceError(f"{path}: no minimal pairs")
    _check_unique(keys, path)
    return pairs
