"""logmel encoder: features vs an independent float64 DFT + explicit mel matrix, nearest centroid vs brute
force, dedup, stereo 44.1 kHz vs mono 16 kHz, k-means fitting."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _units_helpers import SENTENCES, assert_nearest, brute_force_nearest, speech
from slmeval.audio import write_audio
from slmeval.units import (LogMelParams, LogMelTokenizer, TokenizerError, dedup_units, fit_logmel_kmeans,
                           load_tokenizer, nearest_centroid, tokenize_sources)
from slmeval.units.logmel import LogMelFeaturizer

SR = 16_000


def reference_logmel(wav, *, n_mels=40, win=400, hop=320, n_fft=512, f_min=0.0, f_max=8000.0,
                     floor=1e-6, normalize=True):
    """Frame loop, periodic Hann, DFT by explicit complex exponentials, HTK triangles built from the formula."""
    x = np.asarray(wav, dtype=np.float64)
    n_frames = 1 + (len(x) - win) // hop
    n = np.arange(win)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / win)
    k = np.arange(n_fft // 2 + 1)
    dft = np.exp(-2j * np.pi * np.outer(k, n) / n_fft)          # zero padding to n_fft == fewer terms
    power = np.empty((n_frames, len(k)))
    for t in range(n_frames):
        spec = dft @ (x[t * hop: t * hop + win] * window)
        power[t] = np.abs(spec) ** 2

    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(f_min), mel(f_max), n_mels + 2))
    freqs = k * SR / n_fft
    fb = np.zeros((len(k), n_mels))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        rising = (freqs - lo) / (mid - lo)
        falling = (hi - freqs) / (hi - mid)
        fb[:, m] = np.clip(np.minimum(rising, falling), 0, None)
    out = np.log(np.maximum(power @ fb, floor))
    if normalize:
        out = (out - out.mean(0)) / np.maximum(out.std(0), 1e-5)
    return out


@pytest.fixture(scope="module")
def wav():
    return speech(SENTENCES[0])


@pytest.mark.parametrize("kw", [
    {},                                                                   # defaults: 40 mels, 25/20 ms, CMVN
    {"n_mels": 24, "hop": 160, "normalize": False, "f_min": 60.0, "f_max": 7600.0},
])
def test_features_match_independent_dft(wav, kw):
    params = LogMelParams(n_mels=kw.get("n_mels", 40), hop_ms=kw.get("hop", 320) / 16,
                          normalize=kw.get("normalize", True), f_min=kw.get("f_min", 0.0),
                          f_max=kw.get("f_max", 8000.0))
    ours = LogMelFeaturizer(params)(wav)
    ref = reference_logmel(wav, **kw)
    assert ours.shape == ref.shape == (1 + (len(wav) - 400) // kw.get("hop", 320), params.n_mels)
    np.testing.assert_allclose(ours, ref, rtol=1e-7, atol=1e-7)


def test_nearest_centroid_matches_brute_force():
    rng = np.random.default_rng(3)
    feats, cents = rng.normal(size=(500, 40)), rng.normal(size=(64, 40))
    np.testing.assert_array_equal(nearest_centroid(feats, cents), brute_force_nearest(feats, cents)[0])
    with pytest.raises(TokenizerError, match="feature dim 40 does not match centroid dim 12"):
        nearest_centroid(feats, cents[:, :12])


def test_encode_is_nearest_centroid_of_reference_features(wav):
    cents = np.random.default_rng(0).normal(size=(50, 40)).astype(np.float32)
    tok = LogMelTokenizer(cents, dedup=False)
    units = tok.encode(wav)
    assert units.dtype == np.int64 and tok.n_units == 50
    assert_nearest(units, reference_logmel(wav), cents, rtol=1e-9)


def test_dedup_hand_checked_and_switchable(wav):
    np.testing.assert_array_equal(dedup_units([5, 5, 3, 3, 3, 5, 7, 7]), [5, 3, 5, 7])
    assert dedup_units([]).size == 0 and dedup_units([4]).tolist() == [4]
    cents = np.random.default_rng(1).normal(size=(8, 40))  # few centroids -> many repeats
    raw = LogMelTokenizer(cents, dedup=False).encode(wav)
    dd = LogMelTokenizer(cents, dedup=True).encode(wav)
    assert len(raw) == 1 + (len(wav) - 400) // 320 and len(dd) < len(raw)
    np.testing.assert_array_equal(dd, dedup_units(raw))
    assert np.all(dd[1:] != dd[:-1])
    assert LogMelTokenizer(cents, dedup=True).identity != LogMelTokenizer(cents, dedup=False).identity


def test_identity_lists_every_parameter():
    cents = np.zeros((4, 24))
    ident = LogMelTokenizer(cents, params=LogMelParams(n_mels=24, hop_ms=10.0)).identity
    json.dumps(ident)  # JSON-serialisable
    for name in LogMelParams.field_names():
        assert name in ident
    assert ident["n_mels"] == 24 and ident["hop_length"] == 160 and ident["kind"] == "logmel"
    with pytest.raises(TokenizerError, match="centroids are 4x24 .* expected K x 40"):
        LogMelTokenizer(cents)
    with pytest.raises(TokenizerError, match="f_max"):
        LogMelParams(f_max=9000.0)


def test_too_short_input_is_a_clear_error():
    tok = LogMelTokenizer(np.zeros((3, 40)))
    with pytest.raises(TokenizerError, match="shorter than the encoder's shortest input"):
        tok.encode(np.zeros(399, np.float32))


def test_stereo_44k_file_gives_same_units_as_mono_16k(tmp_path):
    """Both files render the same espeak-ng audio (22.05 kHz); one is stored 16 kHz mono, the other
    44.1 kHz stereo with unequal channels whose average is the signal."""
    mono = speech(SENTENCES[1], sr=SR)
    hi = speech(SENTENCES[1], sr=44_100)
    write_audio(tmp_path / "mono.wav", mono, SR)
    write_audio(tmp_path / "stereo.flac", np.stack([1.25 * hi, 0.75 * hi], axis=1), 44_100)
    cents = np.random.default_rng(2).normal(size=(40, 40))
    tok = LogMelTokenizer(cents, dedup=False)
    (a, b), _ = tokenize_sources([tmp_path / "mono.wav", tmp_path / "stereo.flac"], ["mono", "stereo"],
                                 tok, None, progress=False)
    assert abs(len(a) - len(b)) <= 1
    n = min(len(a), len(b))
    assert np.mean(a[:n] == b[:n]) >= 0.95   # measured: 1.0


def test_fit_kmeans_writes_a_loadable_tokenizer_with_lloyd_fixed_point(tmp_path):
    files = []
    for i, text in enumerate(SENTENCES):
        files.append(tmp_path / f"{i}.wav")
        write_audio(files[-1], speech(text), SR)
    out = fit_logmel_kmeans(files, k=12, out_dir=tmp_path / "tok", seed=0, progress=False, n_mels=32)
    cfg = json.loads((out / "tokenizer.json").read_text())
    assert cfg["kind"] == "logmel" and cfg["n_mels"] == 32 and cfg["centroids"] == "centroids.npy"
    tok = load_tokenizer(str(out))
    assert tok.n_units == 12 and tok.identity["n_mels"] == 32
    # k-means centres are the means of the frames assigned to them (independent check of the fit).
    from slmeval.audio import load_audio

    feats = np.concatenate([LogMelFeaturizer(LogMelParams(n_mels=32))(load_audio(f)) for f in files])
    assign = brute_force_nearest(feats, tok.centroids)[0]
    for j in np.unique(assign):
        np.testing.assert_allclose(tok.centroids[j], feats[assign == j].mean(0), atol=1e-3)
    # Subsampling to max_frames is recorded.
    out2 = fit_logmel_kmeans(files, k=4, out_dir=tmp_path / "tok2", max_frames=50, progress=False)
    assert json.loads((out2 / "tokenizer.json").read_text())["fit"]["n_frames"] == 50
    with pytest.raises(TokenizerError, match="unknown log-mel parameters"):
        fit_logmel_kmeans(files, k=4, out_dir=tmp_path / "x", progress=False, n_mel=3)
