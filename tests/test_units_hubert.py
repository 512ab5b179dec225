"""hubert encoder on a tiny random HubertModel: units vs a plain HF forward + float64 argmin, layer
numbering, waveform normalisation, padding safety, identity."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from transformers import HubertModel

from _units_helpers import SENTENCES, assert_nearest, save_tiny_hubert, speech
from slmeval.units import TokenizerError, load_tokenizer


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_hubert(tmp_path_factory.mktemp("hubert"), n_layers=3)


@pytest.fixture(scope="module")
def centroids(tmp_path_factory):
    path = tmp_path_factory.mktemp("km") / "km.npy"
    np.save(path, np.random.default_rng(0).normal(size=(24, 32)).astype(np.float32))
    return path


def reference_features(model_dir, wav, layer, normalize=False):
    model = HubertModel.from_pretrained(str(model_dir)).eval()
    x = np.asarray(wav, np.float64)
    if normalize:
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    with torch.no_grad():
        out = model(torch.tensor(x, dtype=torch.float32)[None], output_hidden_states=True)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    return out.hidden_states[layer][0].double().numpy()


@pytest.mark.parametrize("layer", [0, 1, 3])
def test_units_match_plain_forward(model_dir, centroids, layer):
    wav = speech(SENTENCES[0])
    tok = load_tokenizer(f"hubert:model={model_dir},layer={layer},centroids={centroids},dedup=false")
    assert len(tok.model.encoder.layers) == max(layer, 1)  # later layers are not computed
    units = tok.encode(wav)
    feats = reference_features(model_dir, wav, layer)
    assert units.shape == (feats.shape[0],) and units.dtype == np.int64
    assert_nearest(units, feats, np.load(centroids))


def test_stable_layer_norm_variant_intermediate_layer(tmp_path, centroids):
    """HuBERT-large style (pre-LN, final encoder LayerNorm): layer L < N must be the raw layer output."""
    model_dir = save_tiny_hubert(tmp_path / "large", n_layers=3, stable_layer_norm=True)
    wav = speech(SENTENCES[1])
    tok = load_tokenizer(f"hubert:model={model_dir},layer=2,centroids={centroids},dedup=false")
    assert_nearest(tok.encode(wav), reference_features(model_dir, wav, 2), np.load(centroids))


def test_do_normalize_from_preprocessor_config(tmp_path, centroids):
    model_dir = save_tiny_hubert(tmp_path / "m", n_layers=2, do_normalize=True)
    wav = 0.3 * speech(SENTENCES[1]) + 0.05  # offset + scale: normalisation visibly matters
    tok = load_tokenizer(f"hubert:model={model_dir},layer=2,centroids={centroids},dedup=false")
    assert tok.identity["do_normalize"] is True
    assert_nearest(tok.encode(wav), reference_features(model_dir, wav, 2, normalize=True), np.load(centroids))


def test_padding_safe_batches(model_dir, centroids):
    tok = load_tokenizer(f"hubert:model={model_dir},layer=2,centroids={centroids},dedup=false")
    full = speech(SENTENCES[2])
    wavs = [full[:9000], full[3000:12000], full, full[:5000]]   # two equal lengths, two singles
    alone = [tok.encode(w) for w in wavs]
    batched = tok.encode_batch(wavs)
    for a, b in zip(alone, batched):
        np.testing.assert_array_equal(a, b)
    # The hazard is real for this architecture: zero-padding the short file changes its units.
    padded = np.zeros((2, len(full)), np.float32)
    padded[0], padded[1, :5000] = full, full[:5000]
    with torch.no_grad():
        hs = tok.model(torch.from_numpy(padded), output_hidden_states=True).hidden_states[2][1].numpy()
    naive = ((hs[: len(alone[3]), None, :] - tok.centroids[None]) ** 2).sum(-1).argmin(1)
    assert not np.array_equal(naive, alone[3])


def test_identity_and_errors(model_dir, centroids, tmp_path):
    tok = load_tokenizer(f"hubert:model={model_dir},layer=2,centroids={centroids}")
    weights = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert tok.identity["model_sha256"] == weights
    assert tok.identity["layer"] == 2 and tok.identity["dedup"] is True and tok.n_units == 24
    assert str(model_dir) not in str(tok.identity)  # path-free: a moved checkpoint keeps its cache
    with pytest.raises(TokenizerError, match=r"layer=4 out of range; this model has layers 0\.\.3"):
        load_tokenizer(f"hubert:model={model_dir},layer=4,centroids={centroids}")
    np.save(tmp_path / "bad.npy", np.zeros((10, 16), np.float32))
    with pytest.raises(TokenizerError, match="centroids are 10x16 .* expected K x 32"):
        load_tokenizer(f"hubert:model={model_dir},layer=1,centroids={tmp_path / 'bad.npy'}")
    with pytest.raises(TokenizerError, match="missing keys \\['layer'\\]"):
        load_tokenizer(f"hubert:model={model_dir},centroids={centroids}")
    with pytest.raises(TokenizerError, match="shorter than the encoder's shortest input \\(165 samples"):
        tok.encode(np.zeros(100, np.float32))


def test_identity_covers_the_config_not_only_the_weights(model_dir, centroids, tmp_path):
    """Same weights, an edited config.json (layer-norm eps): other units, so another identity — else the
    unit cache and --resume would hand back the old units."""
    import json
    import shutil

    edited = tmp_path / "edited"
    shutil.copytree(model_dir, edited)
    config = json.loads((edited / "config.json").read_text())
    config["layer_norm_eps"] = 0.5
    (edited / "config.json").write_text(json.dumps(config))
    spec = "hubert:model={},layer=2,centroids=" + str(centroids)
    before, after = load_tokenizer(spec.format(model_dir)), load_tokenizer(spec.format(edited))
    wav = speech(SENTENCES[0])
    assert list(before.encode(wav)) != list(after.encode(wav))
    assert before.identity["model_sha256"] == after.identity["model_sha256"]
    assert before.identity != after.identity
