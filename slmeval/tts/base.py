"""One interface over the TTS backends `slmeval synth` drives (espeak-ng, Bark).

A backend turns a batch of texts, one voice and a seed into 16 kHz mono float32 waveforms, and
describes itself (`identity`) completely enough that the synthesis manifest says how every file was
made: backend name, model, a content hash of the model, and the sampling options.
"""
from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

import numpy as np

from slmeval.audio import TARGET_SR


class TTSError(RuntimeError):
    """A backend that cannot be loaded, an unknown voice, or a synthesis that produced no usable audio."""


def sha256_files(paths: Iterable[Path], root: Path | None = None) -> str:
    """sha256 over the files' names (relative to `root`) and contents, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(str(path.relative_to(root) if root else path.name).encode())
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


class TTSBackend(ABC):
    """Subclasses set `name` and `batch_size` and implement `identity`, `check_voice`, `synthesize_batch`."""

    name: str = ""
    batch_size: int = 1
    # True when the output depends on the seed: the manifest then records the seed of each call.
    seeded: bool = False

    @property
    @abstractmethod
    def identity(self) -> dict:
        """JSON-serialisable: backend, model, model_hash, version, options (everything that shapes output)."""

    def voices(self) -> list[str] | None:
        """The voices this backend can list (Bark presets), or None when they cannot be enumerated."""
        return None

    @abstractmethod
    def check_voice(self, voice: str) -> None:
        """Raise TTSError naming the voice (and what exists) if it cannot be used."""

    @abstractmethod
    def synthesize_batch(self, texts: list[str], voice: str, seed: int) -> list[np.ndarray]:
        """One waveform per text: 1-D float32, 16 kHz, finite, non-empty."""


def check_waveform(wav: np.ndarray, what: str) -> np.ndarray:
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    if wav.size == 0:
        raise TTSError(f"{what}: synthesis produced no samples")
    if not np.isfinite(wav).all():
        raise TTSError(f"{what}: synthesis produced NaN or infinite samples")
    return wav


class EspeakBackend(TTSBackend):
    """espeak-ng voices and variants ("en-us", "en-gb+f3", "en-gb-scotland+m2"); deterministic, so no seed.

    A batch is spoken by parallel espeak-ng processes (`workers`, default: CPU count).
    """

    name = "espeak"
    seeded = False

    def __init__(self, *, speed: int | None = None, pitch: int | None = None, batch_size: int = 8,
                 workers: int | None = None):
        from slmeval.tts import espeak

        self._espeak = espeak
        self.speed, self.pitch = speed, pitch
        self.batch_size = max(1, batch_size)
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._version = espeak.espeak_version()   # also fails early (and clearly) when espeak-ng is missing

    @property
    def identity(self) -> dict:
        return {
            "backend": self.name,
            "model": "espeak-ng",
            "version": self._version,
            # espeak-ng has no weights; its version string pins the engine and its voice data.
            "model_hash": hashlib.sha256(self._version.encode()).hexdigest(),
            "options": {"speed": self.speed, "pitch": self.pitch, "sample_rate": TARGET_SR},
        }

    def check_voice(self, voice: str) -> None:
        try:
            self._espeak.synthesize("a", voice, speed=self.speed, pitch=self.pitch)
        except self._espeak.EspeakError as err:
            raise TTSError(f"espeak voice {voice!r} cannot be used ({err}); list voices with "
                           "`espeak-ng --voices` and variants with `espeak-ng --voices=variant`") from err

    def synthesize_batch(self, texts: list[str], voice: str, seed: int) -> list[np.ndarray]:
        def one(text: str) -> np.ndarray:
            wav = self._espeak.synthesize(text, voice, speed=self.speed, pitch=self.pitch)
            return check_waveform(wav, f"espeak[{voice}] {text[:40]!r}")

        if len(texts) == 1 or self.workers == 1:
            return [one(t) for t in texts]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(texts))) as pool:
            return list(pool.map(one, texts))


BACKENDS = ("espeak", "bark")


def make_backend(name: str, *, model: str | Path | None = None, device: str = "cpu",
                 batch_size: int | None = None, options: dict | None = None) -> TTSBackend:
    """Build a backend by name. `options` are backend keyword arguments (temperatures, speed, ...)."""
    options = dict(options or {})
    if batch_size is not None:
        options["batch_size"] = batch_size
    if name == "espeak":
        if model is not None:
            raise TTSError("--model is for Bark; espeak-ng takes its voices from --voices")
        return EspeakBackend(**options)
    if name == "bark":
        if model is None:
            raise TTSError("--tts bark needs --model DIR: a local copy of suno/bark or suno/bark-small")
        from slmeval.tts.bark import BarkBackend   # imports torch/transformers only when used

        return BarkBackend(model, device=device, **options)
    raise TTSError(f"unknown TTS backend {name!r}; expected one of {', '.join(BACKENDS)}")
