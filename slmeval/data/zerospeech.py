"""ZeroSpeech 2021 (sLM21) layouts: `<root>/<track>/<split>/*.wav` + `gold.csv`.

* syntactic (sBLIMP): one gold.csv row per file; the correct (1) and incorrect (0) rows that share
  (type, subtype, id, voice) form one voice-pair. Dev holds 50,400 files (25,200 pairs), test 126,000.
* lexical (sWUGGY): the word (correct=1) and the non-word (correct=0) rows that share (id, voice) form
  one voice-pair — the key the official scorer merges on (zerospeech/zerospeech2021,
  zerospeech2021/lexical.py `load_data`; zerospeech/benchmarks, zerospeech/tasks/lm/lexical.py).

Everything is vectorised in pandas; the only Python loop builds the Pair objects.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from slmeval.data._common import check_unique_ids, examples, list_audio, require_dir
from slmeval.data.base import READERS, DataLayoutError, Pair, Utterance

log = logging.getLogger(__name__)

GOLD_COLUMNS = ("filename", "type", "subtype", "id", "voice", "correct", "transcription")
PAIR_KEY = ["type", "subtype", "id", "voice"]
# Columns the official lexical scorer reads (it drops `phones` and `length` by name, so all must exist).
LEXICAL_COLUMNS = ("filename", "word", "phones", "length", "frequency", "correct", "voice", "id")
LEXICAL_PAIR_KEY = ["id", "voice"]
# The official frequency bands (lexical.py `evaluate_by_frequency`): pandas.cut with edges
# [0, 1, 5, 20, 100, inf), right=False — so "1-5" holds 1..4 and "6-20" holds 5..19, as published.
FREQUENCY_BANDS = ((1, "oov"), (5, "1-5"), (20, "6-20"), (100, "21-100"), (float("inf"), ">100"))


def read_gold(gold: Path, columns: tuple[str, ...], required: tuple[str, ...]) -> pd.DataFrame:
    """gold.csv as text columns (ids like "007" survive), `line` = the line an editor shows.

    Checks: the `columns` exist (by header name: order and extra columns do not matter), the `required`
    ones are never empty, `correct` is 0/1, no filename is listed twice."""
    try:
        df = pd.read_csv(gold, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataLayoutError(f"{gold}: cannot parse as CSV ({err})") from err
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataLayoutError(
            f"{gold}: missing column(s) {', '.join(missing)}; expected a header with "
            f"{', '.join(columns)} (found {', '.join(df.columns) or 'none'})")
    if df.empty:
        raise DataLayoutError(f"{gold}: no rows below the header")
    df = df[list(columns)].apply(lambda col: col.str.strip())
    df["line"] = df.index + 2                     # 1-based, after the header

    for col in required:
        empty = df.loc[df[col] == "", "line"]
        if len(empty):
            raise DataLayoutError(f"{gold}: empty {col!r} on line(s) {examples(map(str, empty))}")
    bad = df.loc[~df["correct"].isin(["0", "1"])]
    if len(bad):
        row = bad.iloc[0]
        raise DataLayoutError(
            f"{gold}: line {row['line']}: correct={row['correct']!r}, expected 1 or 0 "
            f"({len(bad)} such row(s))")
    dup = df.loc[df["filename"].duplicated(keep=False)]
    if len(dup):
        first = dup.iloc[0]["filename"]
        lines = dup.loc[dup["filename"] == first, "line"].tolist()
        raise DataLayoutError(
            f"{gold}: filename {first!r} is listed more than once (lines {lines}); "
            f"{dup['filename'].nunique()} duplicated filename(s) in all")
    return df


def pair_rows(df: pd.DataFrame, gold: Path, key: list[str]) -> pd.DataFrame:
    """One row per voice-pair with `*_pos` / `*_neg` columns; any `key` group that is not exactly one
    correct + one incorrect row is an error naming it."""
    is_correct = (df["correct"] == "1").astype("int64").rename("correct_rows")
    sizes = is_correct.groupby([df[c] for c in key], sort=False).agg(["size", "sum"])
    sizes.columns = ["rows", "correct_rows"]
    broken = sizes[(sizes["rows"] != 2) | (sizes["correct_rows"] != 1)]
    if len(broken):
        values = broken.index[0] if len(key) > 1 else (broken.index[0],)
        row = broken.iloc[0]
        files = df.loc[(df[key] == list(values)).all(axis=1), "filename"].tolist()
        named = " ".join(f"{k}={v!r}" for k, v in zip(key, values))
        raise DataLayoutError(
            f"{gold}: voice-pair {named} has {row['rows']} row(s) with {row['correct_rows']} correct "
            f"(files: {', '.join(files)}); expected exactly one correct=1 and one correct=0 row. "
            f"{len(broken)} such pair(s) in all")
    pos = df[df["correct"] == "1"]
    neg = df[df["correct"] == "0"]
    return pos.merge(neg, on=key, suffixes=("_pos", "_neg"), validate="one_to_one")


def locate_split(root: Path, track: str, split: str) -> tuple[Path, Path]:
    """(`<root>/<track>/<split>`, its gold.csv), with an error that says where we looked."""
    root = Path(root)
    split_dir = root / track / split
    gold = split_dir / "gold.csv"
    if not gold.is_file():
        hint = ""
        if (root / track).is_dir():
            found = sorted(p.name for p in (root / track).iterdir() if p.is_dir())
            hint = f"; splits found under {root / track}: {', '.join(found) or 'none'}"
        elif root.name == track or (root / "gold.csv").is_file():
            hint = f"; pass the dataset root (the folder that contains {track}/), not a sub-folder"
        raise DataLayoutError(
            f"{track}: no gold file at {gold} (expected <root>/{track}/{split}/gold.csv next to "
            f"the {split} audio files){hint}")
    require_dir(split_dir, f"the {track} {split} audio folder")
    return split_dir, gold


def audio_for(split_dir: Path, df: pd.DataFrame) -> dict[str, Path]:
    """Audio files of the split by stem; every gold.csv filename must be there."""
    on_disk = list_audio(split_dir)
    listed = set(df["filename"])
    missing = listed.difference(on_disk)
    if missing:
        raise DataLayoutError(
            f"{split_dir}: {len(missing)} file(s) listed in gold.csv are not on disk as .wav/.flac: "
            f"{examples(missing)}")
    unlisted = set(on_disk).difference(listed)
    if unlisted:
        log.warning("%s: %d audio file(s) not listed in gold.csv are ignored: %s",
                    split_dir, len(unlisted), examples(unlisted))
    return on_disk


def _sort(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    # Item ids numerically when they are numbers; sorted in pandas, since a Python sort key per pair
    # costs about as much as building the pairs.
    rows["item_number"] = pd.to_numeric(rows["id"], errors="coerce")
    return rows.sort_values(keys, na_position="last", kind="stable", ignore_index=True)


@READERS.register("zerospeech_sblimp")
def read_zerospeech_sblimp(root: Path, split: str = "dev") -> list[Pair]:
    """<path>/syntactic/<split>/*.wav + gold.csv (filename,type,subtype,id,voice,correct,transcription).

    Read `<root>/syntactic/<split>/` (gold.csv + audio) into voice-pairs."""
    split_dir, gold = locate_split(root, "syntactic", split)
    df = read_gold(gold, GOLD_COLUMNS, required=("filename", "type", "subtype", "id", "voice", "correct"))
    return sblimp_pairs(gold, df, audio_for(split_dir, df))


def sblimp_pairs(gold: Path, df: pd.DataFrame, on_disk: dict) -> list[Pair]:
    """Voice-pairs of a read syntactic gold.csv, audio looked up by file stem (a path or encoded bytes)."""
    rows = pair_rows(df, gold, PAIR_KEY)
    rows["pair_id"] = rows["type"] + "/" + rows["subtype"] + "/" + rows["id"] + "/" + rows["voice"]
    rows = _sort(rows, ["type", "subtype", "item_number", "id", "voice"])
    # Plain lists: iterating pandas' Arrow-backed string columns costs microseconds per element.
    col = {c: rows[c].tolist() for c in rows.columns}
    check_unique_ids(col["pair_id"], str(gold))    # a "/" inside a field could make two ids collide
    return [
        Pair(id=pid,
             positive=Utterance(key=fpos, audio=on_disk[fpos]),
             negative=Utterance(key=fneg, audio=on_disk[fneg]),
             meta={"type": t, "subtype": s, "item": i, "voice": v,
                   "transcription_positive": tpos, "transcription_negative": tneg})
        for pid, fpos, fneg, t, s, i, v, tpos, tneg in zip(
            col["pair_id"], col["filename_pos"], col["filename_neg"], col["type"], col["subtype"],
            col["id"], col["voice"], col["transcription_pos"], col["transcription_neg"])
    ]


def frequency_band(frequency: int | None) -> str | None:
    """The official band of a word's LibriSpeech count (None: no count, as pandas.cut gives NaN)."""
    if frequency is None or frequency < 0:
        return None
    return next(label for upper, label in FREQUENCY_BANDS if frequency < upper)


def _integers(rows: pd.DataFrame, column: str, gold: Path) -> list[int | None]:
    """A text column as int|None (empty → None); anything else that is not an integer is an error."""
    values = rows[column].tolist()
    out: list[int | None] = []
    for value, line in zip(values, rows["line_pos"].tolist()):
        if value == "":
            out.append(None)
            continue
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not number.is_integer():
            raise DataLayoutError(f"{gold}: line {line}: {column}={value!r}, expected an integer (or empty)")
        out.append(int(number))
    return out


@READERS.register("zerospeech_lexical")
def read_zerospeech_lexical(root: Path, split: str = "dev") -> list[Pair]:
    """<path>/lexical/<split>/*.wav + gold.csv (filename,word,phones,length,frequency,correct,voice,id).

    Read `<root>/lexical/<split>/` (gold.csv + audio) into (word, non-word) voice-pairs.

    A non-word's text is its `word` field, or its `phones` when the word field is empty (the release
    leaves non-words' spelling empty; the official scorer then shows phones the same way)."""
    split_dir, gold = locate_split(root, "lexical", split)
    df = read_gold(gold, LEXICAL_COLUMNS, required=("filename", "correct", "voice", "id"))
    return lexical_pairs(gold, df, audio_for(split_dir, df))


def lexical_pairs(gold: Path, df: pd.DataFrame, on_disk: dict) -> list[Pair]:
    """(word, non-word) voice-pairs of a read lexical gold.csv, audio looked up by file stem."""
    rows = pair_rows(df, gold, LEXICAL_PAIR_KEY)
    rows["pair_id"] = rows["id"] + "/" + rows["voice"]
    rows = _sort(rows, ["item_number", "id", "voice"])
    frequency = _integers(rows, "frequency_pos", gold)
    length = _integers(rows, "length_pos", gold)
    col = {c: rows[c].tolist() for c in rows.columns}
    check_unique_ids(col["pair_id"], str(gold))
    nonword = [w or p for w, p in zip(col["word_neg"], col["phones_neg"])]
    return [
        Pair(id=pid,
             positive=Utterance(key=fpos, audio=on_disk[fpos]),
             negative=Utterance(key=fneg, audio=on_disk[fneg]),
             meta={"item": i, "voice": v, "word": w, "nonword": nw, "frequency": f,
                   "frequency_band": frequency_band(f), "length": n})
        for pid, fpos, fneg, i, v, w, nw, f, n in zip(
            col["pair_id"], col["filename_pos"], col["filename_neg"], col["id"], col["voice"],
            col["word_pos"], nonword, frequency, length)
    ]


# Each reader function is named after the reader it registers (`source: zerospeech_lexical` in a task file
# = read_zerospeech_lexical; the metric family of the same name scores what it reads). The names before
# issue 24, kept for code that imports them:
read_sblimp = read_zerospeech_sblimp
read_swuggy = read_zerospeech_lexical
