"""`slmeval units fit-kmeans / convert-kmeans / encode` through typer's CliRunner on espeak-ng speech."""
from __future__ import annotations

import json

import joblib
import numpy as np
import pytest
from sklearn.cluster import MiniBatchKMeans
from typer.testing import CliRunner

from _units_helpers import SENTENCES, speech
from slmeval.audio import load_audio, write_audio
from slmeval.cli import app
from slmeval.units import load_tokenizer

runner = CliRunner()


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech")
    (root / "sub").mkdir()
    for i, text in enumerate(SENTENCES):
        write_audio(root / ("sub" if i == 2 else ".") / f"{i}.flac", speech(text, "en-gb" if i else "en-us"))
    (root / "notes.txt").write_text("not audio")
    return root


def test_fit_kmeans_then_encode(audio_dir, tmp_path):
    out = tmp_path / "tok"
    res = runner.invoke(app, ["units", "fit-kmeans", str(audio_dir), "--k", "10", "--out", str(out),
                              "--n-mels", "32", "--seed", "1"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "tokenizer.json").read_text())
    assert cfg["fit"] == {"k": 10, "seed": 1, "n_files": 3, "n_frames": cfg["fit"]["n_frames"]}
    assert np.load(out / "centroids.npy").shape == (10, 32)

    wav_file = audio_dir / "sub" / "2.flac"
    res = runner.invoke(app, ["units", "encode", str(wav_file), "--tokenizer", str(out)])
    assert res.exit_code == 0, res.output
    printed = [int(t) for t in res.stdout.split()]
    expected = load_tokenizer(str(out)).encode(load_audio(wav_file))
    assert printed == expected.tolist() and len(printed) > 5


def test_convert_kmeans_needs_the_flag(tmp_path):
    data = np.random.default_rng(0).normal(size=(200, 40)).astype(np.float32)
    km = MiniBatchKMeans(n_clusters=5, random_state=0, n_init=1).fit(data)
    src = tmp_path / "x_km500.bin"
    joblib.dump(km, src)
    res = runner.invoke(app, ["units", "convert-kmeans", str(src), "--out", str(tmp_path / "km.npy")])
    assert res.exit_code == 2 and "--allow-pickle" in res.output and not (tmp_path / "km.npy").exists()
    res = runner.invoke(app, ["units", "convert-kmeans", str(src), "--out", str(tmp_path / "km.npy"),
                              "--allow-pickle"])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(np.load(tmp_path / "km.npy"), km.cluster_centers_)
    # The pickle itself is refused by `encode` without the flag.
    write_audio(tmp_path / "a.wav", speech(SENTENCES[0]))
    res = runner.invoke(app, ["units", "encode", str(tmp_path / "a.wav"), "-t", f"logmel:centroids={src}"])
    assert res.exit_code == 2 and "--allow-pickle" in res.output


def test_encode_bad_spec_lists_expected_keys(audio_dir):
    res = runner.invoke(app, ["units", "encode", str(audio_dir / "0.flac"), "-t", "logmel:n_mels=40"])
    assert res.exit_code == 2
    assert "missing keys ['centroids']" in res.output and "optional dedup" in res.output


def test_fit_kmeans_empty_folder(tmp_path):
    res = runner.invoke(app, ["units", "fit-kmeans", str(tmp_path), "--k", "4", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "no .wav/.flac/.ogg files found" in res.output
