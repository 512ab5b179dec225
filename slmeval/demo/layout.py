"""Where each mini-task utterance goes on disk, in the published layouts the real readers expect.

* mini_sblimp:          syntactic/dev/<name>.flac + syntactic/dev/gold.csv (ZeroSpeech 2021 sBLIMP)
* mini_sstorycloze,
  mini_tstorycloze:     <k>_<story>_correct.flac / <k+1>_<story>_incorrect.flac (slprl StoryCloze)
* mini_ms_sstorycloze:  <voice>/<k>_<story>_correct.flac ... (one folder per espeak-ng voice)

Item lists (`items/<task>.tsv`, and gold.csv for sBLIMP) hold every file's text and voice; they are
pure functions of `slmeval.demo.items`, so a test can regenerate and compare them without audio.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from slmeval.demo import items
from slmeval.demo.stories import ClozeItem

# id and voice before type, subtype, transcription: the official sLM21 scorer reads its by_type labels by
# column position and needs this relative order (slmeval.exports.zerospeech.official_label_columns).
GOLD_HEADER = ["filename", "id", "voice", "type", "subtype", "correct", "transcription"]
STORY_HEADER = ["file", "story", "voice", "correct", "negative_kind", "text"]
TASK_DIRS = {"mini_sblimp": "mini_sblimp", "mini_sstorycloze": "mini_sstorycloze",
             "mini_tstorycloze": "mini_tstorycloze", "mini_ms_sstorycloze": "mini_ms_sstorycloze"}


@dataclass(frozen=True)
class AudioJob:
    task: str
    relpath: str          # relative to audio_assets/
    text: str
    voice: str


def _neutral_name(*parts: str) -> str:
    """A stable file name that does not reveal which side of a pair the file is."""
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def sblimp_gold_rows() -> list[list[str]]:
    rows = []
    for pair in items.sblimp_pairs():
        for voice in items.SBLIMP_VOICES:
            for correct, text in (("1", pair.good), ("0", pair.bad)):
                name = _neutral_name(pair.type, pair.subtype, str(pair.id), voice, text)
                row = {"filename": name, "id": str(pair.id), "voice": voice, "type": pair.type,
                       "subtype": pair.subtype, "correct": correct, "transcription": text}
                rows.append([row[c] for c in GOLD_HEADER])
    return rows


def _story_rows(cloze: list[ClozeItem], voice: str, folder: str) -> list[list[str]]:
    rows = []
    for i, item in enumerate(cloze):
        sid = item.story.id
        prefix = f"{folder}/" if folder else ""
        rows.append([f"{prefix}{2 * i}_{sid}_correct.flac", sid, voice, "1", item.kind, item.positive_text])
        rows.append([f"{prefix}{2 * i + 1}_{sid}_incorrect.flac", sid, voice, "0", item.kind, item.negative_text])
    return rows


def story_rows(task: str) -> list[list[str]]:
    """Rows of `items/<task>.tsv`; `file` is relative to the task folder."""
    if task == "mini_sstorycloze":
        return _story_rows(items.sstory_items(), items.STORY_VOICE, "")
    if task == "mini_tstorycloze":
        return _story_rows(items.tstory_items(), items.STORY_VOICE, "")
    if task == "mini_ms_sstorycloze":
        return [row for voice in items.MS_VOICES for row in _story_rows(items.ms_story_items(), voice, voice)]
    raise KeyError(f"not a mini StoryCloze task: {task!r}")


def audio_jobs() -> list[AudioJob]:
    """Every task file to synthesise, with its path relative to audio_assets/."""
    col = {name: i for i, name in enumerate(GOLD_HEADER)}
    jobs = [AudioJob("mini_sblimp", f"mini_sblimp/syntactic/dev/{row[col['filename']]}.flac",
                     row[col["transcription"]], row[col["voice"]])
            for row in sblimp_gold_rows()]
    for task in ("mini_sstorycloze", "mini_tstorycloze", "mini_ms_sstorycloze"):
        jobs += [AudioJob(task, f"{TASK_DIRS[task]}/{row[0]}", row[5], row[2]) for row in story_rows(task)]
    return jobs
