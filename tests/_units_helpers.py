"""Shared builders for the units tests: espeak-ng speech, a tiny random HubertModel, reference maths."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

SENTENCES = ("the cat sat on the mat", "a quick brown fox jumps", "she sells sea shells")


@lru_cache(maxsize=None)
def speech(text: str, voice: str = "en-us", sr: int = 16_000) -> np.ndarray:
    from slmeval.tts.espeak import synthesize

    wav = synthesize(text, voice, target_sr=sr)
    wav.setflags(write=False)
    return wav


def save_tiny_hubert(out_dir: Path, *, n_layers: int = 2, seed: int = 0, do_normalize: bool | None = None,
                     stable_layer_norm: bool = False) -> Path:
    """A random HubertModel small enough to run in milliseconds (hidden 32, 3-layer conv stack, hop 320)."""
    import json

    import torch
    from transformers import HubertConfig, HubertModel

    cfg = HubertConfig(hidden_size=32, num_hidden_layers=n_layers, num_attention_heads=2, intermediate_size=64,
                       conv_dim=(16, 16, 16), conv_kernel=(10, 8, 4), conv_stride=(5, 8, 8),
                       num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, feat_extract_norm="layer" if stable_layer_norm else "group",
                       do_stable_layer_norm=stable_layer_norm)
    torch.manual_seed(seed)
    model = HubertModel(cfg).eval()
    model.save_pretrained(str(out_dir))
    if do_normalize is not None:
        (out_dir / "preprocessor_config.json").write_text(json.dumps({"do_normalize": do_normalize}))
    return out_dir


def brute_force_nearest(features: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(argmin, full distance matrix) by explicit float64 differences."""
    diff = features.astype(np.float64)[:, None, :] - centroids.astype(np.float64)[None, :, :]
    dist = (diff ** 2).sum(axis=-1)
    return dist.argmin(axis=1), dist


def assert_nearest(units: np.ndarray, features: np.ndarray, centroids: np.ndarray, rtol: float = 1e-5) -> None:
    """Every chosen centroid is a nearest one (ties allowed within rtol), and almost all equal brute force."""
    ref, dist = brute_force_nearest(features, centroids)
    chosen = dist[np.arange(len(units)), units]
    best = dist.min(axis=1)
    assert np.all(chosen <= best + rtol * (1 + best)), "a frame was not mapped to its nearest centroid"
    assert np.mean(ref == units) >= 0.98


class CountingTokenizer:
    """Wraps a real tokenizer and counts how many waveforms it was asked to encode (a cache hit must
    encode none)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.identity, self.n_units, self.min_samples = inner.identity, inner.n_units, inner.min_samples

    def check_wave(self, wav):
        return self.inner.check_wave(wav)

    def encode(self, wav):
        self.calls += 1
        return self.inner.encode(wav)

    def encode_batch(self, wavs):
        self.calls += len(wavs)
        return self.inner.encode_batch(wavs)
