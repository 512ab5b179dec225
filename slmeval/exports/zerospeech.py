"""A ZeroSpeech 2021 sLM21 submission from finished tasks: `lexical/<split>.txt`,
`syntactic/<split>.txt` and `meta.yaml`, laid out so that the official validator accepts it.

The rules, from zerospeech/zerospeech2021 (zerospeech2021/cli/validate.py, meta.py, lexical.py,
syntactic.py):
  * the root holds exactly meta.yaml, phonetic/, lexical/, syntactic/, semantic/ (+ code/ when
    open_source is true) — folders we have nothing for are written empty, and the validator is run
    with `--no-phonetic --no-semantic` (and `--no-lexical` / `--no-syntactic` for a track not run);
  * `<track>/` holds exactly dev.txt (`--only-dev`) or dev.txt and test.txt;
  * each line is `<file stem> <float>`, split on one space; every `*.wav` stem of
    `<dataset>/<track>/<split>/` exactly once, nothing else;
  * meta.yaml has exactly author, affiliation, description (non-empty strings), open_source,
    visually_grounded (booleans), train_set (string), gpu_budget (number) and parameters with exactly
    phonetic {metric in cosine|euclidean|kl|kl_symmetric, frame_shift: number} and semantic {metric (a
    scipy cdist metric), pooling in min|max|mean|sum|last|lastlast|off}.

The scorers compare, per pair, the correct file's score with the incorrect one's, so a higher score must
mean more likely: we write the protocol's score (a log-probability). The official syntactic scorer pairs
the k-th correct row of gold.csv with its k-th incorrect row (syntactic.py `load_data`: the two
`reset_index()` frames are concatenated side by side); we pair by (type, subtype, id, voice). When a
gold.csv's row order would make the two disagree, the export says so. The lexical scorer merges on
(voice, id) since zerospeech2021 commit 1d03da6, so its order does not matter.

Two more things in a gold.csv that the official scorers get wrong and slmeval does not, also said by the
export (found by running them, docs/zerospeech.md): their by-pair tables take each pair's labels by
*column position* (`evaluate_by_pair`: `x.iat[0, 2]` ... `x.iat[0, 5]`), so by_type / by_frequency /
by_length are labelled from the wrong columns unless gold.csv's columns come in the release's relative
order; and a word without a frequency count stops the lexical scorer (pandas.cut of a missing value).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

import slmeval
from slmeval.exports.base import EXPORTS, ExportTask
from slmeval.io import atomic_write_text
from slmeval.task_loader.registry import TaskConfig, TaskError

log = logging.getLogger(__name__)

TRACKS = ("lexical", "syntactic")
SPLITS = ("dev", "test")
ROOT_FOLDERS = ("phonetic", "lexical", "syntactic", "semantic")
# The gold.csv columns the official syntactic scorer treats as one pair's identity.
SYNTACTIC_KEY = ("type", "subtype", "id", "voice")
META_TEMPLATE = """\
# ZeroSpeech 2021 submission metadata, written by slmeval {version}. Fill in author, affiliation,
# train_set and gpu_budget before submitting (slmeval keeps this file once it exists). The phonetic
# and semantic parameters are required by the validator even though this submission has no phonetic
# or semantic part; they are placeholders.
author: unknown (edit before submitting)
affiliation: unknown (edit before submitting)
description: {description}
open_source: false
train_set: unknown (edit before submitting)
visually_grounded: false
gpu_budget: 0
parameters:
  phonetic:
    metric: cosine
    frame_shift: 0.01
  semantic:
    metric: cosine
    pooling: mean
"""


class SubmissionError(ValueError):
    """Tasks that cannot form one submission (two tasks writing the same file, an unknown track)."""


@dataclass(frozen=True)
class TrackScores:
    task: str                  # the task the scores come from (for messages)
    track: str                 # lexical | syntactic
    split: str                 # dev | test
    samples: list[dict]        # samples_<task>.jsonl rows: *_key, *_file, *_score


def check_tracks(tracks: Iterable[tuple[str, str, str]]) -> None:
    """(task, track, split) triples → SubmissionError before any work if they cannot form one
    submission: a track or split the validator does not know, or two tasks writing one file."""
    seen: dict[tuple[str, str], str] = {}
    for task, track, split in tracks:
        if track not in TRACKS:
            raise SubmissionError(f"task {task!r}: zerospeech track {track!r}; slmeval writes {' and '.join(TRACKS)}")
        if split not in SPLITS:
            raise SubmissionError(f"task {task!r}: split {split!r}; a ZeroSpeech 2021 submission has "
                                  f"{' and '.join(SPLITS)} only")
        if (track, split) in seen:
            raise SubmissionError(f"tasks {seen[track, split]!r} and {task!r} would both write "
                                  f"zerospeech/{track}/{split}.txt; export them in separate runs")
        seen[track, split] = task


def score_lines(samples: list[dict]) -> str:
    lines = [f"{s[f'{side}_key']} {s[f'{side}_score']!r}\n" for s in samples for side in ("positive", "negative")]
    return "".join(sorted(lines))


def _split_dir(scores: TrackScores) -> Path | None:
    files = {Path(s[f"{side}_file"]).parent for s in scores.samples for side in ("positive", "negative")
             if s.get(f"{side}_file")}
    return files.pop() if len(files) == 1 else None


def positional_mispairs(gold: Path, key: tuple[str, ...] = SYNTACTIC_KEY) -> tuple[int, str | None]:
    """How many of gold.csv's pairs the official syntactic scorer would form from different keys
    (k-th correct row with k-th incorrect row), and the first such pair described by line numbers."""
    df = pd.read_csv(gold, dtype=str, keep_default_na=False)
    df.columns = [str(c).strip() for c in df.columns]
    df["line"] = df.index + 2
    correct = df[df["correct"].str.strip() == "1"].reset_index(drop=True)
    incorrect = df[df["correct"].str.strip() == "0"].reset_index(drop=True)
    n = min(len(correct), len(incorrect))
    same = (correct.loc[: n - 1, list(key)].to_numpy() == incorrect.loc[: n - 1, list(key)].to_numpy()).all(axis=1)
    bad = [i for i in range(n) if not same[i]] + list(range(n, max(len(correct), len(incorrect))))
    if not bad:
        return 0, None
    k = bad[0]
    if k >= n:
        first = f"the {len(correct)} correct and {len(incorrect)} incorrect rows differ in number"
    else:
        c, i = correct.loc[k], incorrect.loc[k]
        first = (f"correct row {k + 1} (line {c['line']}: {'/'.join(c[list(key)])}) meets incorrect row "
                 f"{k + 1} (line {i['line']}: {'/'.join(i[list(key)])})")
    return len(bad), first


# What each label of the official by-pair table must be read from, in the order it reads them (positions
# 2, 3, 4, 5 of the frame load_data builds; see official_label_columns).
OFFICIAL_LABELS = {
    "syntactic": {"type": "type", "subtype": "subtype", "sentence": "transcription",
                  "non sentence": "transcription (incorrect row)"},
    "lexical": {"frequency": "frequency", "word": "word", "length": "length", "non word": "word (non-word row)"},
}


def official_label_columns(header: list[str], track: str) -> dict[str, str]:
    """{label: the gold.csv column the official scorer takes it from instead} for the labels it gets wrong.

    Its per-pair frame (syntactic.py / lexical.py `load_data`) is: gold.csv's columns in file order minus
    the dropped ones, for the correct row; then the incorrect row's columns that are not dropped; then
    the score. `evaluate_by_pair` reads positions 2..5 of it as the labels in OFFICIAL_LABELS (pandas < 3,
    whose groupby.apply passes the group's key columns along)."""
    if track == "syntactic":
        first = [c for c in header if c not in ("filename", "correct")]
        second = [c for c in header if c not in ("filename", "correct", "voice", "type", "subtype", "id")]
        side = "incorrect row"
    else:
        first = [c for c in header if c not in ("filename", "phones", "correct")]
        second = [c for c in header if c not in ("filename", "phones", "correct", "voice", "frequency", "id", "length")]
        side = "non-word row"
    frame = first + [f"{c} ({side})" for c in second] + ["the pair's score"]
    read = {label: frame[2 + i] if 2 + i < len(frame) else "nothing"
            for i, label in enumerate(OFFICIAL_LABELS[track])}
    return {label: column for label, column in read.items() if column != OFFICIAL_LABELS[track][label]}


def _gold_problems(track: str, task: str, gold: Path) -> list[str]:
    """What the official scorer would get wrong from this gold.csv (its order, columns, counts)."""
    problems = []
    df = pd.read_csv(gold, dtype=str, keep_default_na=False)
    df.columns = [str(c).strip() for c in df.columns]
    wrong = official_label_columns(list(df.columns), track)
    if wrong:
        table = "by_type table" if track == "syntactic" else "by_frequency / by_length tables"
        problems.append(
            f"{task}: the official sLM21 scorer reads each pair's labels by column position, and with the "
            f"columns of {gold} ({','.join(df.columns)}) it would take "
            + ", ".join(f"{label!r} from {column!r}" for label, column in wrong.items())
            + f" — its {table} would be labelled wrong (its overall score is right). Order the columns as "
            + ("filename,id,voice,type,subtype,correct,transcription" if track == "syntactic"
               else "filename,id,voice,frequency,word,phones,length,correct")
            + " (the relative order its positional reads need); slmeval reads gold.csv by header name")
    if track == "syntactic":
        count, first = positional_mispairs(gold)
        if count:
            problems.append(
                f"{task}: {gold} is ordered so that the official sLM21 scorer, which pairs the k-th "
                f"correct row with the k-th incorrect row, would mis-pair {count} pair(s) — e.g. {first}. "
                f"slmeval pairs by (type, subtype, id, voice); its accuracy is right, the official score of "
                f"this submission would not be")
    elif "frequency" in df.columns:
        words = df[(df["correct"].str.strip() == "1") & (df["frequency"].str.strip() == "")]
        if len(words):
            problems.append(
                f"{task}: {len(words)} word row(s) of {gold} have no frequency (first: line {words.index[0] + 2}); "
                f"the official lexical scorer stops on them (pandas.cut cannot band a missing count), "
                f"slmeval counts such words in acc and in no frequency band")
    return problems


def _check_against_dataset(scores: TrackScores) -> list[str]:
    """What the official validator and scorer would object to, as messages (empty: nothing)."""
    folder = _split_dir(scores)
    if folder is None:
        return [f"{scores.task}: cannot check the submission against the dataset: its samples do not "
                f"come from one folder of audio files"]
    problems = []
    required = {p.stem for p in folder.glob("*.wav")}
    written = {s[f"{side}_key"] for s in scores.samples for side in ("positive", "negative")}
    if required != written:
        missing, extra = sorted(required - written), sorted(written - required)
        problems.append(
            f"{scores.task}: the official validator wants one line per *.wav in {folder}: "
            + (f"{len(missing)} not scored (e.g. {', '.join(missing[:3])}; files gold.csv does not list are "
               f"not evaluated)" if missing else "")
            + ("; " if missing and extra else "")
            + (f"{len(extra)} scored files are not .wav there (e.g. {', '.join(extra[:3])})" if extra else ""))
    gold = folder / "gold.csv"
    if gold.is_file():
        problems += _gold_problems(scores.track, scores.task, gold)
    return problems


def write_submission(out_dir: str | Path, tracks: list[TrackScores]) -> list[Path]:
    """Write the submission folder; returns the files written. Problems the official tools would
    report are logged as warnings (the files are still written: they are correct for slmeval)."""
    if not tracks:
        raise SubmissionError("nothing to export: no task feeds a ZeroSpeech lexical or syntactic track")
    check_tracks((t.task, t.track, t.split) for t in tracks)
    out = Path(out_dir)
    written = []
    for folder in ROOT_FOLDERS:
        (out / folder).mkdir(parents=True, exist_ok=True)
    for scores in tracks:
        target = out / scores.track / f"{scores.split}.txt"     # both checked by check_tracks
        atomic_write_text(target, score_lines(scores.samples))
        written.append(target)
        for problem in _check_against_dataset(scores):
            log.warning("--export zerospeech: %s", problem)
    meta = out / "meta.yaml"
    if meta.exists():
        log.info("--export zerospeech: kept the existing %s", meta)
    else:
        description = (f"Log-probabilities of a speech language model over discrete units, scored by "
                       f"slmeval {slmeval.__version__}; model, tokenizer and protocol are in the run's results.json")
        atomic_write_text(meta, META_TEMPLATE.format(version=slmeval.__version__, description=description))
        written.append(meta)
        log.warning("--export zerospeech: %s is a template: fill in author, affiliation, train_set and "
                    "gpu_budget before submitting", meta)
    log.info("--export zerospeech: wrote %s; check it with: %s", out, validator_command(out, tracks))
    return written


def validator_command(out_dir: Path, tracks: list[TrackScores]) -> str:
    """The zerospeech2021-validate call that checks exactly what was written."""
    have = {(t.track, t.split) for t in tracks}
    flags = ["--no-phonetic", "--no-semantic"]
    flags += [f"--no-{track}" for track in TRACKS if not any(t == track for t, _ in have)]
    if not any(s == "test" for _, s in have):
        flags.append("--only-dev")
    note = ""
    if any(s == "test" for _, s in have) and any((t, s) not in have for t, _ in have for s in SPLITS):
        note = "  (without --only-dev the validator wants dev.txt and test.txt of every track: run both splits)"
    return f"zerospeech2021-validate <sLM21-dataset> {out_dir} {' '.join(flags)}{note}"


def _track_of(config: TaskConfig, args: dict) -> tuple[str, str, str]:
    track, split = args.get("track"), config.options.get("split")
    if not track or not split:
        raise TaskError(f"task {config.name!r} ({config.origin}): the zerospeech export needs "
                        f"`exports: {{zerospeech: {{track: lexical|syntactic}}}}` and a `split` reader option")
    return config.name, track, split


def check_zerospeech_tasks(configs: list[TaskConfig]) -> None:
    """Before any work: the declaring tasks name a track and split, and form one submission."""
    check_tracks(_track_of(c, c.exports["zerospeech"]) for c in configs)


@EXPORTS.register("zerospeech")
def export_zerospeech(out_dir: Path, tasks: list[ExportTask]) -> list[Path]:
    """A ZeroSpeech 2021 sLM21 submission (lexical/, syntactic/, meta.yaml) from the tasks whose task
    file declares `exports: {zerospeech: {track: ...}}`; the split is the task's `split` reader option."""
    tracks = []
    for task in tasks:
        name, track, split = _track_of(task.config, task.args)
        tracks.append(TrackScores(name, track, split, task.samples))
    return write_submission(out_dir, tracks)


export_zerospeech.check = check_zerospeech_tasks   # type: ignore[attr-defined]
