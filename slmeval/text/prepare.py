"""Build the text twins' data files from the StoryCloze release (`slmeval text-prepare storycloze`).

* text_storycloze: the StoryCloze Spring-2016 test set (Mostafazadeh et al. 2016; 1,871 stories, the
  stories sStoryCloze was synthesised from, slp-rl/SpokenStoryCloze README) with its own adversarial
  endings, in the column names of lm-eval's storycloze task / the HF `LSDSem/story_cloze` copy.
* text_tstorycloze: the same stories, the wrong ending being "randomly sampled from the dataset"
  (slp-rl/SpokenStoryCloze README, which introduced tStoryCloze). The release publishes neither the
  sampling code nor a seed, so the exact negatives of the spoken files cannot be rebuilt from text:
  here each story's wrong ending is the right ending of another story, drawn uniformly with a
  recorded seed, and the two endings are put in random order (lm-eval gives a tie to the first choice).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from slmeval.io import check_output_path, read_jsonl, sha256_file, write_json, write_jsonl
from slmeval.text.data import TextTaskError

STORY_COLUMNS = ("story_id", "input_sentence_1", "input_sentence_2", "input_sentence_3", "input_sentence_4",
                 "sentence_quiz1", "sentence_quiz2", "answer_right_ending")
# The release CSV (cloze_test_test__spring2016 - cloze_test_ALL_test.csv) names the same fields so:
RELEASE_COLUMNS = ("InputStoryid", "InputSentence1", "InputSentence2", "InputSentence3", "InputSentence4",
                   "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding")
TOPIC_RULE = ("wrong ending = the right ending of another story drawn uniformly at random (numpy "
              "default_rng(seed)); the two endings in random order")


def read_stories(path: str | Path) -> list[dict]:
    """StoryCloze rows from the release CSV, or a CSV / JSON / JSONL already in lm-eval's column names."""
    path = Path(path)
    if not path.is_file():
        raise TextTaskError(f"{path}: no such file (expected the StoryCloze test CSV)")
    header: set[str] | None = None
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = set(reader.fieldnames or ())     # judged before the rows: a header-only file has no rows
            rows = list(reader)
    elif path.suffix.lower() == ".json":
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise TextTaskError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise TextTaskError(f"{path}: expected a JSON list of story objects with the columns {list(STORY_COLUMNS)}")
    else:
        rows = read_jsonl(path)
    header = header if header is not None else (set(rows[0]) if rows else set())
    if set(RELEASE_COLUMNS) <= header:
        rows = [{ours: row[theirs] for ours, theirs in zip(STORY_COLUMNS, RELEASE_COLUMNS)} for row in rows]
    elif not set(STORY_COLUMNS) <= header:
        missing = sorted(set(STORY_COLUMNS) - header)
        raise TextTaskError(f"{path}: column(s) {missing} missing; expected the release columns {list(RELEASE_COLUMNS)} "
                            f"or {list(STORY_COLUMNS)}, found {sorted(header)}")
    if not rows:
        raise TextTaskError(f"{path}: no stories (the columns are right, but no row follows them)")
    out = []
    for i, row in enumerate(rows, start=2 if path.suffix.lower() == ".csv" else 1):
        try:
            answer = int(row["answer_right_ending"])
        except (TypeError, ValueError):
            answer = -1
        if answer not in (1, 2):
            raise TextTaskError(f"{path}: row {i}: answer_right_ending must be 1 or 2, got {row['answer_right_ending']!r}")
        out.append({**{k: str(row[k]) for k in STORY_COLUMNS[:-1]}, "answer_right_ending": answer})
    return out


def topic_negatives(stories: list[dict], seed: int) -> list[dict]:
    """tStoryCloze-style items (see the module docstring)."""
    if len(stories) < 2:
        raise TextTaskError("topic StoryCloze needs at least 2 stories to draw wrong endings from")
    rng = np.random.default_rng(seed)
    right = [s[f"sentence_quiz{s['answer_right_ending']}"] for s in stories]
    out = []
    for i, story in enumerate(stories):
        j = int(rng.integers(0, len(stories) - 1))
        j += j >= i   # uniform over the other stories
        first_right = bool(rng.integers(0, 2))
        endings = (right[i], right[j]) if first_right else (right[j], right[i])
        out.append({**{k: story[k] for k in STORY_COLUMNS[:5]}, "sentence_quiz1": endings[0],
                    "sentence_quiz2": endings[1], "answer_right_ending": 1 if first_right else 2,
                    "negative_from_story": stories[j]["story_id"]})
    return out


def prepare_storycloze(source: str | Path, data_root: str | Path, *, seed: int = 0) -> dict[str, Path]:
    """Write <data_root>/storycloze/test.jsonl and <data_root>/tstorycloze/test.jsonl (+ manifests)."""
    root = check_output_path(data_root, "--data-root", folder=True)    # before reading: fail fast
    stories = read_stories(source)
    written = {}
    manifest = {"source": str(source), "source_sha256": sha256_file(source), "n_stories": len(stories)}
    for name, rows, extra in (("storycloze", stories, {}),
                              ("tstorycloze", topic_negatives(stories, seed), {"seed": seed, "rule": TOPIC_RULE})):
        target = root / name / "test.jsonl"
        write_jsonl(target, rows)
        write_json(root / name / "manifest.json", {**manifest, **extra, "file": target.name})
        written[name] = target
    return written
