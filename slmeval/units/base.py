"""The tokenizer interface every encoder implements, plus the pieces all encoders share.

A unit tokenizer maps a 16 kHz mono float32 waveform to a sequence of discrete unit ids:
frame features (log-mel, HuBERT layer L, ...) -> nearest k-means centroid -> optional removal of
consecutive duplicates. `identity` is the tokenizer's complete, JSON-serialisable fingerprint: two
tokenizers with equal identities produce equal units, which is what the unit cache and results.json
provenance rely on.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

SAMPLE_RATE = 16_000
# Bump when an encoder's arithmetic changes in a way that changes units: it is part of every identity,
# so stale cache entries are never reused.
IMPLEMENTATION_VERSION = 1


class TokenizerError(ValueError):
    """A tokenizer that cannot be built or applied (bad spec, centroid shape, too-short audio...)."""


def dedup_units(units: np.ndarray | list[int]) -> np.ndarray:
    """Remove consecutive duplicates: [5, 5, 3, 3, 3, 5] -> [5, 3, 5]."""
    arr = np.asarray(units, dtype=np.int64).reshape(-1)
    if arr.size == 0:
        return arr
    keep = np.ones(arr.size, dtype=bool)
    keep[1:] = arr[1:] != arr[:-1]
    return arr[keep]


def nearest_centroid(features: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (squared Euclidean distance) for each row of `features`.

    Computed in float64 as ||c||^2 - 2 x.c (||x||^2 is the same for every centroid, so it cannot change
    the argmin); float64 keeps near-ties decided the same way on every machine.
    """
    x = np.asarray(features, dtype=np.float64)
    c = np.asarray(centroids, dtype=np.float64)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
        raise TokenizerError(f"feature dim {x.shape[-1]} does not match centroid dim {c.shape[-1]}")
    scores = (c * c).sum(axis=1)[None, :] - 2.0 * (x @ c.T)
    return scores.argmin(axis=1).astype(np.int64)


def identity_key(identity: dict) -> str:
    """sha256 of the identity's canonical JSON: the cache directory name for this tokenizer."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class UnitTokenizer:
    """Base class: subclasses set `identity`, `n_units`, `centroids` and implement `features`."""

    identity: dict
    n_units: int
    centroids: np.ndarray
    dedup: bool
    # Shortest waveform (samples) the encoder can turn into at least one frame.
    min_samples: int = 1
    # Where it came from (a preset's name and pins, a Hub commit): provenance, not identity — the same
    # units from a local copy and from the Hub share one cache.
    source: dict | None = None

    def features(self, wav: np.ndarray) -> np.ndarray:
        """(frames, dim) feature matrix for one waveform."""
        raise NotImplementedError

    def features_batch(self, wavs: list[np.ndarray]) -> list[np.ndarray]:
        return [self.features(w) for w in wavs]

    def check_wave(self, wav: np.ndarray) -> np.ndarray:
        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim != 1:
            raise TokenizerError(f"expected a 1-D 16 kHz mono waveform, got shape {wav.shape}")
        if wav.size < self.min_samples:
            raise TokenizerError(
                f"waveform of {wav.size} samples is shorter than the encoder's shortest input "
                f"({self.min_samples} samples = {1000 * self.min_samples / SAMPLE_RATE:.1f} ms at 16 kHz)")
        if not np.isfinite(wav).all():
            raise TokenizerError("waveform holds NaN or infinite samples")
        return wav

    def _to_units(self, feats) -> np.ndarray:
        if isinstance(feats, np.ndarray):
            units = nearest_centroid(feats, self.centroids)
        else:          # a tensor on the device (device_features): the float64 argmin runs there too
            import torch

            from slmeval.units.batching import nearest_centroid_tensor

            cached = getattr(self, "_centroids_on", None)
            if cached is None or cached.device != feats.device:
                cached = self._centroids_on = torch.as_tensor(self.centroids, dtype=torch.float64, device=feats.device)
            units = nearest_centroid_tensor(feats, cached)
        return dedup_units(units) if self.dedup else units

    def device_features(self, wavs: list[np.ndarray]) -> list:
        """Features of a batch for `encode_batch`: numpy arrays, or tensors left on the encoder's device."""
        return self.features_batch(wavs)

    def encode(self, wav: np.ndarray) -> np.ndarray:
        """16 kHz mono float32 waveform -> int64 unit ids (deduplicated if the tokenizer says so)."""
        return self._to_units(self.features(self.check_wave(wav)))

    def encode_batch(self, wavs: list[np.ndarray]) -> list[np.ndarray]:
        checked = [self.check_wave(w) for w in wavs]
        return [self._to_units(f) for f in self.device_features(checked)]

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.identity.items() if not k.endswith("sha256")}
        return f"{type(self).__name__}({shown})"
