"""Audio I/O: every waveform slmeval touches enters through `load_audio`.

Speech encoders (HuBERT, log-mel) expect 16 kHz mono float32. Real benchmark files are not always
that, so conversions happen here, once, and are logged — never silently. Files that cannot be used
(unreadable, empty, non-finite samples) raise `AudioError` naming the file.

soundfile + scipy only: torchaudio/torchcodec wheels do not import on CPU-only torch builds.
"""
from __future__ import annotations

import io
import logging
from math import gcd
from pathlib import Path
from typing import Union

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from slmeval.io import atomic_path

log = logging.getLogger(__name__)

TARGET_SR = 16_000
AudioSource = Union[str, Path, bytes]


# Whole-file RMS level under which a recording is "near-silent": -60 dBFS, about the noise floor of
# 10-bit audio and 40 dB below quiet read speech (-20 to -30 dBFS). Such a file still gets units (the
# encoder maps silence to some centroid), but a pair built on it says nothing about the model.
NEAR_SILENT_DBFS = -60.0


# Declared sample rates a real recording can have: from 4 kHz (below telephony's 8 kHz) to 768 kHz (the
# highest PCM rate converters offer). A header outside says nothing true about the samples — and a rate
# of 1 Hz would make resampling to 16 kHz allocate 16,000 samples per stored one.
MIN_SR, MAX_SR = 4_000, 768_000
# Largest |sample| a decoded file may hold. Integer PCM decodes to [-1, 1]; float files are written in
# [-1, 1] or, by some tools, on int16's scale (±32768). Nothing recorded lies beyond that, and the
# float32 front ends square and sum samples over a frame (log-mel power spectrum, HuBERT's norms): at a
# peak of ~1e16 that overflows to inf and the units silently collapse onto a few ids.
MAX_PEAK = 32_768.0


class AudioError(ValueError):
    """A file that cannot be turned into a usable waveform. The message names the file."""


def level_dbfs(wav: np.ndarray) -> float:
    """RMS level of a float waveform in dB relative to full scale (1.0); -inf for digital silence."""
    rms = float(np.sqrt(np.mean(np.square(np.asarray(wav, dtype=np.float64))))) if len(wav) else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def is_near_silent(wav: np.ndarray) -> bool:
    return level_dbfs(wav) < NEAR_SILENT_DBFS


def _describe(source: AudioSource, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (str, Path)):
        return str(source)
    return f"<{len(source)} bytes of audio>"


def resample(wav: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling (exact rational ratio), float32 out."""
    if sr_in == sr_out:
        return wav.astype(np.float32, copy=False)
    g = gcd(sr_in, sr_out)
    return resample_poly(wav, sr_out // g, sr_in // g).astype(np.float32)


def load_audio(source: AudioSource, *, target_sr: int = TARGET_SR, name: str | None = None,
               conversions: list[tuple[str, str]] | None = None) -> np.ndarray:
    """Read a file path or encoded bytes (wav/flac/ogg) → 1-D float32 at `target_sr`, mono.

    Stereo is averaged to mono and other rates are resampled, each with an INFO log line naming the
    file, so a run's log says exactly which inputs were converted — or, with `conversions`, appended
    there as (file, "resampled 44100 Hz -> 16000 Hz") for the caller to summarise (one line per task,
    not one per file: `tokenize_sources`).
    """
    label = _describe(source, name)
    try:
        handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
        with sf.SoundFile(handle) as fh:
            sr = fh.samplerate
            # The header is judged before the samples are decoded or resampled (no allocation yet).
            if not MIN_SR <= sr <= MAX_SR:
                raise AudioError(f"{label}: declared sample rate {sr} Hz is not one a recording has (expected "
                                 f"{MIN_SR}..{MAX_SR} Hz); the file header is damaged or wrong")
            wav = fh.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise AudioError(f"{label}: cannot decode audio ({err})") from err
    if wav.shape[0] == 0:
        raise AudioError(f"{label}: audio file has no samples")
    if wav.shape[1] > 1:
        _converted(conversions, label, f"{wav.shape[1]} channels, averaged to mono")
    mono = wav.mean(axis=1)
    if not np.isfinite(mono).all():
        raise AudioError(f"{label}: audio holds NaN or infinite samples")
    peak = float(np.abs(mono).max())
    if peak > MAX_PEAK:
        raise AudioError(f"{label}: samples reach {peak:.3g}, beyond any recording's range (full scale is 1.0; "
                         f"at most {MAX_PEAK:g} is accepted); the front end would overflow and give wrong units")
    if sr != target_sr:
        _converted(conversions, label, f"resampled {sr} Hz -> {target_sr} Hz")
        mono = resample(mono, sr, target_sr)
    return mono


def _converted(conversions: list[tuple[str, str]] | None, label: str, what: str) -> None:
    if conversions is None:
        log.info("%s: %s", label, what)
    else:
        conversions.append((label, what))


def summarise_conversions(conversions: list[tuple[str, str]], limit: int = 3) -> list[str]:
    """One line per kind of conversion: how many files, and the first few by name."""
    by_kind: dict[str, list[str]] = {}
    for label, what in conversions:
        by_kind.setdefault(what, []).append(label)
    return [f"{what}: {len(files)} file(s) ({', '.join(files[:limit])}{', ...' if len(files) > limit else ''})"
            for what, files in by_kind.items()]


def write_audio(path: str | Path, wav: np.ndarray, sr: int = TARGET_SR) -> None:
    """Write atomically (temp file + rename): a killed run never leaves a truncated file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".flac": "FLAC", ".wav": "WAV", ".ogg": "OGG"}.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: unsupported audio extension (expected .wav, .flac or .ogg)")
    with atomic_path(path) as tmp:
        subtype = "PCM_16" if fmt in ("WAV", "FLAC") else None
        sf.write(tmp, np.asarray(wav, dtype=np.float32), sr, format=fmt, subtype=subtype)
