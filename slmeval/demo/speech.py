"""espeak-ng synthesis for the demo assets: one function for task audio and training audio alike, so the
tokenizer and the model see the task voices exactly as they were rendered for training."""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from slmeval.audio import TARGET_SR, write_audio
from slmeval.tts.espeak import synthesize

# espeak-ng appends ~0.3 s of silence; 0.1 s is plenty and keeps audio_assets/ small.
TAIL_SILENCE_S = 0.1
SILENCE_LEVEL = 1e-3
# The machine is shared: never more than two synthesis processes.
MAX_PROCESSES = 2
# A little faster than espeak-ng's default 175 words/min: shorter files, fewer units per story.
WORDS_PER_MINUTE = 200


def speak(text: str, voice: str) -> np.ndarray:
    wav = synthesize(text, voice, speed=WORDS_PER_MINUTE)
    loud = np.flatnonzero(np.abs(wav) > SILENCE_LEVEL)
    if loud.size:
        wav = wav[: min(wav.size, int(loud[-1]) + int(TAIL_SILENCE_S * TARGET_SR))]
    return wav


def _speak_to_file(job: tuple[str, str, str]) -> float:
    text, voice, path = job
    wav = speak(text, voice)
    write_audio(path, wav)
    return wav.size / TARGET_SR


def speak_to_files(jobs: Sequence[tuple[str, str, str | Path]], *, processes: int = MAX_PROCESSES,
                   progress: bool = True, label: str = "espeak-ng") -> float:
    """Synthesise every (text, voice, path) job to FLAC/WAV; returns the total seconds of audio."""
    from rich.progress import Progress

    jobs = [(t, v, str(p)) for t, v, p in jobs]
    total = 0.0
    with Progress(disable=not progress, transient=True) as bar, \
            ProcessPoolExecutor(max_workers=max(1, min(processes, MAX_PROCESSES))) as pool:
        task = bar.add_task(label, total=len(jobs))
        for seconds in pool.map(_speak_to_file, jobs, chunksize=16):
            total += seconds
            bar.advance(task)
    return total
