"""Speaker-mismatch analysis: single-speaker accuracy vs the same model on a multi-speaker variant.

The SLM scaling paper (Fig. 3) checks that semantic gains are not a train/test speaker match by
scoring StoryCloze re-synthesised with many voices. Given results folders where one model ran both a
single-speaker task (e.g. `sstorycloze`) and its multi-speaker variant (e.g. `ms_sstorycloze`), this
reports: single acc, the multi-speaker mean over voices, per-voice accuracy, the spread across voices
(sample std, min-max) and the gap = multi mean - single acc with a 95% confidence interval.

CI rule (paired by story): from the samples files, each story s present in both tasks gives
    d_s = mean over voices v of correct(s, v)  -  correct(s, single)
gap = mean_s d_s, CI = gap +- 1.96 * std(d, ddof=1) / sqrt(n_stories). Averaging the voices of a story
first treats the story as the unit of sampling (voices of one story are not independent draws).
When every story has every voice this gap equals multi acc - single acc exactly. Stories found in
only one task are left out of the paired gap and counted in the table. Without samples files the
CI falls back to independent errors: +- 1.96 * sqrt(se_single^2 + se_multi^2) (marked "unpaired").
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slmeval.io import read_jsonl
from slmeval.results.files import load_results

Z95 = 1.959963984540054
_SLPRL_KEY = re.compile(r"^\d+_(?P<story>.+)_(?:correct|incorrect)$")


class SpeakerGapError(ValueError):
    pass


@dataclass
class GapRow:
    run: str
    model: str
    single_task: str
    multi_task: str
    single_acc: float
    multi_mean: float
    voices: dict[str, float] = field(default_factory=dict)
    voice_std: float = float("nan")
    voice_min: float = float("nan")
    voice_max: float = float("nan")
    gap: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    ci_method: str = "paired"
    n_stories: int = 0            # stories in the paired gap
    single_only: int = 0
    multi_only: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def find_results(root: str | Path) -> list[Path]:
    """`root/results.json`, or every results.json below `root` (one model run per folder)."""
    root = Path(root)
    if root.is_file():
        return [root]
    if (root / "results.json").is_file():
        return [root / "results.json"]
    found = sorted(root.rglob("results.json"))
    if not found:
        raise SpeakerGapError(f"{root}: no results.json here or in any sub-folder")
    return found


def story_of(sample: dict) -> str:
    """The story a sample belongs to: meta.story (slmeval's StoryCloze reader), else parsed from the key."""
    story = (sample.get("meta") or {}).get("story")
    if story:
        return str(story)
    m = _SLPRL_KEY.match(str(sample.get("positive_key", "")))
    if m:
        return m["story"]
    return str(sample["id"])


def read_samples(run_dir: Path, task: str) -> list[dict] | None:
    path = run_dir / f"samples_{task}.jsonl"
    if not path.is_file():
        return None
    try:
        return read_jsonl(path)
    except ValueError as err:
        raise SpeakerGapError(str(err)) from None


def paired_gap(single: list[dict], multi: list[dict]) -> tuple[float, float, float, int, int, int]:
    """(gap, ci_low, ci_high, n_stories, single_only, multi_only) by the story-paired rule above."""
    single_by: dict[str, list[float]] = {}
    for s in single:
        single_by.setdefault(story_of(s), []).append(float(s["correct"]))
    multi_by: dict[str, list[float]] = {}
    for s in multi:
        multi_by.setdefault(story_of(s), []).append(float(s["correct"]))
    common = sorted(set(single_by) & set(multi_by))
    d = np.array([np.mean(multi_by[k]) - np.mean(single_by[k]) for k in common], dtype=np.float64)
    n = len(d)
    gap = float(d.mean()) if n else float("nan")
    half = Z95 * float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else float("nan")
    return gap, gap - half, gap + half, n, len(set(single_by) - set(multi_by)), len(set(multi_by) - set(single_by))


def _voice_accs(results: dict, task: str, samples: list[dict] | None) -> dict[str, float]:
    table = (results.get("breakdowns", {}).get(task) or {}).get("speaker")
    if table:
        return {str(v): float(row["acc"]) for v, row in sorted(table.items())}
    if samples:
        by: dict[str, list[float]] = {}
        for s in samples:
            speaker = (s.get("meta") or {}).get("speaker")
            if speaker is not None:
                by.setdefault(str(speaker), []).append(float(s["correct"]))
        return {v: float(np.mean(c)) for v, c in sorted(by.items())}
    return {}


def gap_for_run(path: str | Path, multi: str = "ms_sstorycloze", single: str = "sstorycloze") -> GapRow:
    path = Path(path)
    results = load_results(path)
    run_dir = path if path.is_dir() else path.parent
    for task in (multi, single):
        if task not in results["results"]:
            raise SpeakerGapError(f"{path}: no results for task {task!r} (has: {', '.join(results['results'])})")
    single_samples, multi_samples = read_samples(run_dir, single), read_samples(run_dir, multi)
    voices = _voice_accs(results, multi, multi_samples)
    multi_res, single_res = results["results"][multi], results["results"][single]
    accs = np.array(list(voices.values()), dtype=np.float64)
    multi_mean = float(multi_res.get("acc_voice_mean", accs.mean() if accs.size else multi_res["acc"]))
    row = GapRow(run=str(run_dir), model=str(results.get("config", {}).get("model", "?")),
                 single_task=single, multi_task=multi, single_acc=float(single_res["acc"]), multi_mean=multi_mean,
                 voices=voices)
    if accs.size:
        row.voice_std = float(accs.std(ddof=1)) if accs.size > 1 else 0.0
        row.voice_min, row.voice_max = float(accs.min()), float(accs.max())
    if single_samples and multi_samples:
        (row.gap, row.ci_low, row.ci_high, row.n_stories,
         row.single_only, row.multi_only) = paired_gap(single_samples, multi_samples)
    else:
        row.ci_method = "unpaired"
        row.gap = multi_mean - row.single_acc
        se_m = multi_res.get("acc_voice_mean_stderr", multi_res.get("acc_stderr", float("nan")))
        half = Z95 * math.sqrt(float(single_res.get("acc_stderr", float("nan"))) ** 2 + float(se_m) ** 2)
        row.ci_low, row.ci_high = row.gap - half, row.gap + half
        row.n_stories = int(single_res.get("n_pairs", 0))
    return row


def speaker_gap(root: str | Path, multi: str = "ms_sstorycloze", single: str = "sstorycloze") -> list[GapRow]:
    """One row per results.json under `root` that holds both tasks (others are skipped, and said so)."""
    rows, skipped = [], []
    for path in find_results(root):
        tasks = load_results(path)["results"]
        if multi in tasks and single in tasks:
            rows.append(gap_for_run(path, multi, single))
        else:
            skipped.append(str(path))
    if not rows:
        raise SpeakerGapError(f"{root}: no results.json holds both {single!r} and {multi!r} "
                              f"(looked at {len(skipped)} file(s): {', '.join(skipped[:3])})")
    return rows


def format_table(rows: list[GapRow]):
    """A rich Table: one row per run, voices listed after the summary columns."""
    from rich.table import Table

    table = Table(title="speaker gap (multi-speaker mean - single-speaker acc)")
    for col in ("model", "single", "multi mean", "voice std", "min-max", "gap [95% CI]", "stories", "per voice"):
        table.add_column(col)
    for r in rows:
        voices = " ".join(f"{v}={a:.3f}" for v, a in r.voices.items())
        table.add_row(Path(r.model).name or r.model, f"{r.single_acc:.4f}", f"{r.multi_mean:.4f}",
                      f"{r.voice_std:.4f}", f"{r.voice_min:.3f}-{r.voice_max:.3f}",
                      f"{r.gap:+.4f} [{r.ci_low:+.4f}, {r.ci_high:+.4f}] {r.ci_method}",
                      f"{r.n_stories}" + (f" (+{r.single_only}/{r.multi_only} unpaired)"
                                          if r.single_only or r.multi_only else ""), voices)
    return table
