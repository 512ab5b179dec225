"""Where each synthesised file goes: the slprl StoryCloze layout and the ZeroSpeech sBLIMP layout.

StoryCloze (one subfolder per voice, or flat for a single voice):
    <out>/<voice dir>/<k>_<story id>_correct.wav      k = 0, 2, 4, ... (2 x the story's source position)
    <out>/<voice dir>/<k+1>_<story id>_incorrect.wav
  spoken text = the story context followed by the ending.
sBLIMP (ZeroSpeech 2021):
    <out>/syntactic/<split>/<type>_<subtype>_<id>_<voice dir>_<good|bad>.wav
    <out>/syntactic/<split>/gold.csv   filename,type,subtype,id,voice,correct,transcription

Voice (and id) → file-name mapping, `safe_name`: every character outside slmeval's one file-name
alphabet [A-Za-z0-9._+-] (`slmeval.io.SAFE_CHARS`) becomes "_" and a leading "." gets a "_" prefix
("v2/en_speaker_3" → "v2_en_speaker_3", "en-gb+f3" unchanged). Two voices mapping to the same folder is
an error. The original voice stays in the manifest and gold.csv. Every path component of every planned
file is then checked against `slmeval.io.safe_name` (e.g. length), and the runner refuses any file that
would resolve outside --out.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from slmeval.io import SAFE_CHARS, atomic_write_text
from slmeval.io import safe_name as checked_name
from slmeval.synth.sources import MinimalPair, SourceError, Story

TASKS = ("sstorycloze", "tstorycloze", "sblimp")
_UNSAFE = re.compile(rf"[^{SAFE_CHARS}]")
GOLD_COLUMNS = ("filename", "type", "subtype", "id", "voice", "correct", "transcription")


def safe_name(name: str) -> str:
    out = _UNSAFE.sub("_", name)
    return "_" + out if not out or out.startswith(".") else out


@dataclass(frozen=True)
class Job:
    """One file to synthesise."""

    file: str      # path relative to the output folder (POSIX separators)
    item: str      # story id, or "<type>/<subtype>/<id>" for minimal pairs
    role: str      # correct / incorrect (StoryCloze), good / bad (sBLIMP)
    text: str
    voice: str     # the voice as given (the folder name is safe_name(voice))
    unit: int      # shard unit: all files of one (voice, item) share it


def voice_dirs(voices: list[str]) -> dict[str, str]:
    if not voices:
        raise SourceError("no voices given")
    if len(set(voices)) != len(voices):
        raise SourceError(f"voice listed twice in {voices}")
    dirs: dict[str, str] = {}
    for voice in voices:
        d = safe_name(voice)
        clash = [v for v, dv in dirs.items() if dv == d]
        if clash:
            raise SourceError(f"voices {clash[0]!r} and {voice!r} map to the same folder name {d!r}")
        dirs[voice] = d
    return dirs


def check_paths(jobs: list[Job]) -> list[Job]:
    """Every component of every planned file is one safe file name (slmeval.io.safe_name)."""
    for job in jobs:
        for part in job.file.split("/"):
            try:
                checked_name(part, f"file name part of {job.file!r} (item {job.item!r})")
            except ValueError as err:
                raise SourceError(str(err)) from None
    return jobs


def _safe_ids(ids: list[str], what: str) -> list[str]:
    safe = [safe_name(i) for i in ids]
    seen: dict[str, str] = {}
    for raw, s in zip(ids, safe):
        if s in seen and seen[s] != raw:
            raise SourceError(f"{what} ids {seen[s]!r} and {raw!r} map to the same file name part {s!r}")
        seen[s] = raw
    return safe


def plan_storycloze(stories: list[Story], voices: list[str], *, flat: bool = False) -> list[Job]:
    dirs = voice_dirs(voices)
    if flat and len(voices) != 1:
        raise SourceError("the flat (single-speaker) layout takes exactly one voice")
    sids = _safe_ids([s.id for s in stories], "story")
    jobs = []
    for v, voice in enumerate(voices):
        prefix = "" if flat else dirs[voice] + "/"
        for k, (story, sid) in enumerate(zip(stories, sids)):
            unit = v * len(stories) + k
            jobs.append(Job(f"{prefix}{2 * k}_{sid}_correct.wav", story.id, "correct",
                            f"{story.context} {story.positive}", voice, unit))
            jobs.append(Job(f"{prefix}{2 * k + 1}_{sid}_incorrect.wav", story.id, "incorrect",
                            f"{story.context} {story.negative}", voice, unit))
    return check_paths(jobs)


def plan_sblimp(pairs: list[MinimalPair], voices: list[str], *, split: str = "dev") -> list[Job]:
    dirs = voice_dirs(voices)
    if safe_name(split) != split:
        raise SourceError(f"--split {split!r}: use letters, digits, '.', '_', '+', '-' only")
    stems = _safe_ids([f"{safe_name(p.type)}_{safe_name(p.subtype)}_{safe_name(p.id)}" for p in pairs],
                      "minimal-pair")
    jobs = []
    for v, voice in enumerate(voices):
        for k, (pair, stem) in enumerate(zip(pairs, stems)):
            unit = v * len(pairs) + k
            item = f"{pair.type}/{pair.subtype}/{pair.id}"
            for role, text in (("good", pair.good), ("bad", pair.bad)):
                jobs.append(Job(f"syntactic/{split}/{stem}_{dirs[voice]}_{role}.wav", item, role, text, voice, unit))
    return check_paths(jobs)


def gold_rows(pairs: list[MinimalPair], jobs: list[Job]) -> list[dict]:
    """gold.csv rows for an sBLIMP plan: one correct=1 and one correct=0 row per (type, subtype, id, voice)."""
    by_item = {f"{p.type}/{p.subtype}/{p.id}": p for p in pairs}
    rows = []
    for job in jobs:
        pair = by_item[job.item]
        rows.append({"filename": Path(job.file).stem, "type": pair.type, "subtype": pair.subtype, "id": pair.id,
                     "voice": job.voice, "correct": 1 if job.role == "good" else 0, "transcription": job.text})
    return rows


write_text_atomic = atomic_write_text   # one atomic writer for the whole project (slmeval.results.files)


def write_gold_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=GOLD_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def parse_shard(text: str | None) -> tuple[int, int]:
    """"i/n" (0-based i) → (i, n); None → (0, 1)."""
    if text is None:
        return 0, 1
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not (0 <= int(m.group(1)) < int(m.group(2))):
        raise SourceError(f"--shard {text!r}: expected i/n with 0 <= i < n (e.g. 0/4 ... 3/4)")
    return int(m.group(1)), int(m.group(2))


def shard_jobs(jobs: list[Job], index: int, count: int) -> list[Job]:
    """Deterministic partition by (voice, item) unit: unit % count == index. Both files of a pair stay together."""
    return [j for j in jobs if j.unit % count == index]
