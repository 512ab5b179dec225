"""`logmel` encoder: log-mel frames + k-means, the GSLM baseline tokenizer, and its centroid fitting.

Frames: 25 ms Hann window, 20 ms hop (50 frames/s, like HuBERT-base), no centring (a frame covers only
real samples), power spectrum -> HTK mel filters -> log with a floor -> optional per-utterance
mean/variance normalisation (CMVN: removes channel / speaker level offsets, which helps the units
follow phonetic content rather than voice).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence, get_type_hints

import numpy as np
from transformers.audio_utils import mel_filter_bank, window_function

from slmeval.io import write_json
from slmeval.units.base import IMPLEMENTATION_VERSION, SAMPLE_RATE, TokenizerError, UnitTokenizer
from slmeval.units.centroids import centroids_sha256, check_centroid_dim, load_centroids, save_npy_atomic
from slmeval.units.spec import TOKENIZERS, TokenizerKind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogMelParams:
    n_mels: int = 40
    win_ms: float = 25.0
    hop_ms: float = 20.0
    n_fft: int = 512
    f_min: float = 0.0
    f_max: float = 8000.0
    log_floor: float = 1e-6
    normalize: bool = True       # per-utterance mean/variance normalisation of each mel channel
    window: str = "hann"
    mel_scale: str = "htk"

    def __post_init__(self) -> None:
        problems = []
        if self.n_mels < 1:
            problems.append(f"n_mels={self.n_mels} (expected >= 1)")
        if not 0 < self.hop_ms <= self.win_ms:
            problems.append(f"hop_ms={self.hop_ms} (expected 0 < hop_ms <= win_ms={self.win_ms})")
        if self.n_fft < self.win_length:
            problems.append(f"n_fft={self.n_fft} (expected >= window length {self.win_length} samples)")
        if not 0 <= self.f_min < self.f_max <= SAMPLE_RATE / 2:
            problems.append(f"f_min={self.f_min}, f_max={self.f_max} (expected 0 <= f_min < f_max <= 8000)")
        if self.log_floor <= 0:
            problems.append(f"log_floor={self.log_floor} (expected > 0)")
        if self.window not in ("hann", "hamming", "povey", "boxcar"):
            problems.append(f"window={self.window!r} (expected hann, hamming, povey or boxcar)")
        if self.mel_scale not in ("htk", "slaney", "kaldi"):
            problems.append(f"mel_scale={self.mel_scale!r} (expected htk, slaney or kaldi)")
        if problems:
            raise TokenizerError("invalid log-mel parameters: " + "; ".join(problems))

    @property
    def win_length(self) -> int:
        return int(round(self.win_ms * SAMPLE_RATE / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.hop_ms * SAMPLE_RATE / 1000))

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


class LogMelFeaturizer:
    """Waveform -> (frames, n_mels) float64 log-mel matrix. Filters and window are built once."""

    def __init__(self, params: LogMelParams):
        self.params = params
        self.window = window_function(params.win_length, params.window, periodic=True)
        # (n_fft // 2 + 1, n_mels): triangular filters in Hz, centres evenly spaced on the mel scale.
        self.mel_filters = mel_filter_bank(
            num_frequency_bins=params.n_fft // 2 + 1, num_mel_filters=params.n_mels,
            min_frequency=params.f_min, max_frequency=params.f_max, sampling_rate=SAMPLE_RATE,
            norm=None, mel_scale=params.mel_scale)

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        p = self.params
        x = np.asarray(wav, dtype=np.float64)
        if x.size < p.win_length:
            raise TokenizerError(f"waveform of {x.size} samples is shorter than one {p.win_ms} ms frame")
        frames = np.lib.stride_tricks.sliding_window_view(x, p.win_length)[:: p.hop_length]
        spectrum = np.fft.rfft(frames * self.window, n=p.n_fft, axis=1)
        power = spectrum.real ** 2 + spectrum.imag ** 2
        logmel = np.log(np.maximum(power @ self.mel_filters, p.log_floor))
        if p.normalize:
            std = np.maximum(logmel.std(axis=0, keepdims=True), 1e-5)
            logmel = (logmel - logmel.mean(axis=0, keepdims=True)) / std
        return logmel


class LogMelTokenizer(UnitTokenizer):
    def __init__(self, centroids: np.ndarray, *, params: LogMelParams | None = None, dedup: bool = True,
                 centroids_source: str = "<array>", device: str = "cpu"):
        self.device = device       # batches (encode_batch) run there, in float64 (slmeval.units.batching)
        self.params = params or LogMelParams()
        self.featurizer = LogMelFeaturizer(self.params)
        check_centroid_dim(centroids, self.params.n_mels, centroids_source, f"logmel (n_mels={self.params.n_mels})")
        self.centroids = np.asarray(centroids, dtype=np.float64)
        self.n_units = int(self.centroids.shape[0])
        self.dedup = bool(dedup)
        self.min_samples = self.params.win_length
        self.identity = {
            "kind": "logmel",
            "version": IMPLEMENTATION_VERSION,
            "sample_rate": SAMPLE_RATE,
            **asdict(self.params),
            "win_length": self.params.win_length,
            "hop_length": self.params.hop_length,
            "n_units": self.n_units,
            "centroids_sha256": centroids_sha256(self.centroids),
            "dedup": self.dedup,
        }

    def features(self, wav: np.ndarray) -> np.ndarray:
        return self.featurizer(wav)

    def device_features(self, wavs: list[np.ndarray]) -> list:
        """One padded float64 batch on the device; per-utterance frames and CMVN as `features`."""
        from slmeval.units.batching import logmel_batch, pad_batch

        p = self.params
        batch, lengths = pad_batch(wavs, self.device)
        return logmel_batch(batch, lengths, window=self.featurizer.window, mel_filters=self.featurizer.mel_filters,
                            win_length=p.win_length, hop_length=p.hop_length, n_fft=p.n_fft,
                            log_floor=p.log_floor, normalize=p.normalize)


def fit_logmel_kmeans(audio_files: Sequence[str | Path], *, k: int, out_dir: str | Path, seed: int = 0,
                      max_frames: int = 200_000, progress: bool = True, **feature_params) -> Path:
    """Fit k-means on log-mel frames of `audio_files`; write `centroids.npy` + `tokenizer.json` to `out_dir`.

    If the files hold more than `max_frames` frames, a uniform random subset (drawn with `seed`) is used.
    Returns `out_dir`, which `load_tokenizer(str(out_dir))` accepts.
    """
    from rich.progress import Progress
    from sklearn.cluster import KMeans

    from slmeval.audio import load_audio

    unknown = sorted(set(feature_params) - set(LogMelParams.field_names()))
    if unknown:
        raise TokenizerError(f"unknown log-mel parameters {unknown}; expected some of {LogMelParams.field_names()}")
    params = LogMelParams(**feature_params)
    featurizer = LogMelFeaturizer(params)
    files = [Path(f) for f in audio_files]
    if not files:
        raise TokenizerError("fit_logmel_kmeans: no audio files given")
    chunks = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("log-mel features", total=len(files))
        for f in files:
            wav = load_audio(f)
            if wav.size < params.win_length:
                log.warning("%s: shorter than one frame, skipped for k-means fitting", f)
            else:
                chunks.append(featurizer(wav).astype(np.float32))
            bar.advance(task)
    frames = np.concatenate(chunks) if chunks else np.zeros((0, params.n_mels), np.float32)
    if frames.shape[0] < k:
        raise TokenizerError(f"only {frames.shape[0]} log-mel frames in {len(files)} files; need at least k={k}")
    if frames.shape[0] > max_frames:
        pick = np.random.default_rng(seed).choice(frames.shape[0], size=max_frames, replace=False)
        frames = frames[np.sort(pick)]
    log.info("fitting k-means: k=%d on %d frames x %d mel channels", k, frames.shape[0], params.n_mels)
    km = KMeans(n_clusters=k, random_state=seed, n_init=1).fit(frames)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_npy_atomic(out / "centroids.npy", km.cluster_centers_.astype(np.float32))
    spec = {"kind": "logmel", "centroids": "centroids.npy", **asdict(params), "dedup": True,
            "fit": {"k": k, "seed": seed, "n_files": len(files), "n_frames": int(frames.shape[0])}}
    write_json(out / "tokenizer.json", spec)
    return out


# -- the `logmel` tokenizer kind (`--tokenizer kind=logmel,centroids=...`, tokenizer.json) ----------

_LOGMEL_TYPES: dict[str, type] = {name: hint for name, hint in get_type_hints(LogMelParams).items()
                                  if name in {f.name for f in fields(LogMelParams)}}


def _build_logmel(values: dict[str, Any], *, allow_pickle: bool, device: str) -> UnitTokenizer:
    values = dict(values)
    source = values.pop("centroids")
    centroids = load_centroids(source, allow_pickle=allow_pickle)
    dedup = values.pop("dedup", True)
    return LogMelTokenizer(centroids, params=LogMelParams(**values), dedup=dedup, centroids_source=str(source),
                           device=device)


TOKENIZERS.register("logmel", TokenizerKind(
    keys={"centroids": Path, "dedup": bool, **_LOGMEL_TYPES}, required=("centroids",), build=_build_logmel,
    description="log-mel frames -> nearest k-means centroid (fit with `slmeval units fit-kmeans`)"),
    origin=__name__)
