"""Centroid files (.npy, safetensors, sklearn pickles behind a flag) and tokenizer specs."""
from __future__ import annotations

import json
import pickle

import joblib
import numpy as np
import pytest
from safetensors.numpy import save_file
from sklearn.cluster import KMeans, MiniBatchKMeans

from slmeval.units import (TokenizerError, centroids_sha256, convert_kmeans_pickle, load_centroids,
                           load_tokenizer)


@pytest.fixture(scope="module")
def fitted():
    data = np.random.default_rng(0).normal(size=(300, 40)).astype(np.float32)
    return MiniBatchKMeans(n_clusters=6, random_state=0, n_init=1, batch_size=64).fit(data)


def test_npy_and_safetensors_load_the_same_matrix(tmp_path):
    cents = np.random.default_rng(1).normal(size=(7, 40)).astype(np.float32)
    np.save(tmp_path / "c.npy", cents)
    save_file({"centroids": cents, "extra": np.zeros(3, np.float32)}, str(tmp_path / "named.safetensors"))
    save_file({"whatever": cents}, str(tmp_path / "single.st"))           # detected by content, not name
    save_file({"a": cents, "b": cents}, str(tmp_path / "two.safetensors"))
    for name in ("c.npy", "named.safetensors", "single.st"):
        np.testing.assert_array_equal(load_centroids(tmp_path / name), cents)
    with pytest.raises(TokenizerError, match="expected a single tensor or one named 'centroids'"):
        load_centroids(tmp_path / "two.safetensors")
    # The identity hash is about values, not storage: float32 and float64 copies agree.
    assert centroids_sha256(cents) == centroids_sha256(cents.astype(np.float64))
    assert centroids_sha256(cents) != centroids_sha256(cents[::-1])
    np.save(tmp_path / "vec.npy", cents[0])
    with pytest.raises(TokenizerError, match=r"2-D \(K, dim\) matrix, got shape \(40,\)"):
        load_centroids(tmp_path / "vec.npy")
    with pytest.raises(TokenizerError, match="not found"):
        load_centroids(tmp_path / "absent.npy")


@pytest.mark.parametrize("dump", ["joblib", "pickle"])
def test_pickle_refused_without_flag_then_converted(tmp_path, fitted, dump):
    km = tmp_path / "model_km500.bin"
    if dump == "joblib":
        joblib.dump(fitted, km)
    else:
        km.write_bytes(pickle.dumps(fitted))
    with pytest.raises(TokenizerError, match="--allow-pickle") as err:
        load_centroids(km)
    assert "executes code" in str(err.value) and "slmeval units convert-kmeans" in str(err.value)
    with pytest.raises(TokenizerError, match="--allow-pickle"):
        load_tokenizer(f"logmel:centroids={km}")
    np.testing.assert_array_equal(load_centroids(km, allow_pickle=True), fitted.cluster_centers_)
    out = convert_kmeans_pickle(km, tmp_path / "km.npy")
    converted = load_centroids(out)
    np.testing.assert_array_equal(converted, fitted.cluster_centers_)
    # Same tokenizer identity from the pickle (flagged) and from its conversion.
    a = load_tokenizer(f"logmel:centroids={km}", allow_pickle=True)
    b = load_tokenizer(f"logmel:centroids={out}")
    assert a.identity == b.identity


def test_plain_kmeans_pickle_and_wrong_object(tmp_path):
    data = np.random.default_rng(2).normal(size=(50, 4))
    km = KMeans(n_clusters=3, random_state=0, n_init=1).fit(data)
    joblib.dump(km, tmp_path / "km.pkl")
    np.testing.assert_array_equal(load_centroids(tmp_path / "km.pkl", allow_pickle=True), km.cluster_centers_)
    joblib.dump({"not": "a model"}, tmp_path / "dict.pkl")
    with pytest.raises(TokenizerError, match="holds a dict, expected an sklearn KMeans"):
        load_centroids(tmp_path / "dict.pkl", allow_pickle=True)


def test_spec_errors_are_clear(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((4, 40), np.float32))
    with pytest.raises(TokenizerError, match=r"unknown keys \['nmels'\].*optional dedup, n_mels"):
        load_tokenizer(f"logmel:centroids={tmp_path / 'c.npy'},nmels=40")
    with pytest.raises(TokenizerError, match=r"missing keys \['centroids'\]"):
        load_tokenizer("logmel:n_mels=40")
    with pytest.raises(TokenizerError, match="dedup='maybe' is not a valid bool"):
        load_tokenizer(f"logmel:centroids={tmp_path / 'c.npy'},dedup=maybe")
    with pytest.raises(TokenizerError, match="n_mels='forty' is not a valid int"):
        load_tokenizer(f"logmel:centroids={tmp_path / 'c.npy'},n_mels=forty")
    with pytest.raises(TokenizerError, match=r"neither a preset \(.*mhubert-25hz-l11-km500\), a directory holding "
                                             "tokenizer.json, nor 'kind:key=value"):
        load_tokenizer("wav2vec:model=x")
    with pytest.raises(TokenizerError, match=r"unknown keys \['layer'\]; a preset takes input_pad, dedup, normalize"):
        load_tokenizer("mhubert-25hz-l11-km500:layer=9")     # refused before anything is downloaded
    with pytest.raises(TokenizerError, match="no tokenizer.json"):
        load_tokenizer(str(tmp_path))
    with pytest.raises(TokenizerError, match="not a valid JSON|not valid JSON"):
        (tmp_path / "tokenizer.json").write_text("{oops")
        load_tokenizer(str(tmp_path))


def test_directory_spec_resolves_relative_paths(tmp_path):
    tok_dir = tmp_path / "tok"
    tok_dir.mkdir()
    cents = np.random.default_rng(3).normal(size=(5, 24)).astype(np.float32)
    np.save(tok_dir / "centroids.npy", cents)
    (tok_dir / "tokenizer.json").write_text(json.dumps(
        {"kind": "logmel", "centroids": "centroids.npy", "n_mels": 24, "dedup": False, "fit": {"k": 5}}))
    from_dir = load_tokenizer(str(tok_dir))
    from_str = load_tokenizer(f"logmel:centroids={tok_dir / 'centroids.npy'},n_mels=24,dedup=false")
    assert from_dir.identity == from_str.identity
    assert from_dir.identity["dedup"] is False and from_dir.n_units == 5
