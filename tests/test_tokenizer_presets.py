"""Speech-tokenizer presets through the real download code (huggingface_hub + urllib) against the stand-in
Hub (tests/_hub_server.py): first fetch, warm offline rerun, checksum mismatch, interrupted downloads then
retry, 404, gated, a moved revision — the right units or one clear error, never a half-written cache.

The reference for "the right units" is the hand-wired tokenizer the user would build today: a local HuBERT
folder + `slmeval units convert-kmeans`'s .npy. The test preset is the real one's entry with the test's
own files and pins (sha256 computed here from the bytes served); the real entry's pins are checked against
slm_scaling's DATA.md (transcribed below)."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest

from _hub_server import hub  # noqa: F401  (fixture)
from _units_helpers import save_tiny_hubert, speech
from slmeval.hubfiles import FileSource, downloads_dir
from slmeval.plugins import Entry
from slmeval.units import PRESETS, TokenizerError, TokenizerPreset, load_tokenizer
from slmeval.units.centroids import convert_kmeans_pickle

NAME = "mhubert-25hz-l11-km500"
REPO = "slprl/mhubert-base-25hz"
KM = "mhubert_base_25hz_cp_mls_cv_sp_fisher_L11_km500.bin"
K = 16
WAVS = [speech("the cat sat on the mat"), speech("a quick brown fox jumps", "en-gb")]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A tiny HuBERT folder and an sklearn KMeans over its layer-2 features, pickled with joblib (as TWIST's
    k-means file is), plus the hand-wired .npy made by the existing conversion."""
    import joblib
    from sklearn.cluster import KMeans

    from slmeval.units.hubert import HubertTokenizer

    root = tmp_path_factory.mktemp("preset_assets")
    model = save_tiny_hubert(root / "hubert", n_layers=2, seed=4)
    probe = HubertTokenizer(model, 2, np.zeros((1, 32)))
    feats = np.concatenate([probe.features(w) for w in WAVS])
    buf = io.BytesIO()
    joblib.dump(KMeans(n_clusters=K, n_init=2, random_state=0).fit(feats.astype(np.float64)), buf)
    (root / KM).write_bytes(buf.getvalue())
    npy = convert_kmeans_pickle(root / KM, root / "km.npy")
    return {"model": model, "km": buf.getvalue(), "npy": npy, "hand": f"hubert:model={model},layer=2,centroids={npy}"}


@pytest.fixture
def preset(hub, assets, monkeypatch, tmp_path):
    """The stand-in Hub serves the HuBERT repo and the k-means file; the preset table points at them."""
    monkeypatch.setenv("SLMEVAL_CACHE", str(tmp_path / "slmeval_cache"))
    commit = hub.add(REPO, assets["model"])
    url = hub.add_web_file(KM, assets["km"])
    entry = TokenizerPreset(model=REPO, revision=commit, layer=2, n_units=K,
                            kmeans=FileSource(KM, hashlib.sha256(assets["km"]).hexdigest(), url=url))
    PRESETS.names()   # load the built-ins before replacing one
    monkeypatch.setitem(PRESETS._entries, NAME, Entry(NAME, entry, "tests"))
    return {"commit": commit, "entry": entry}


def units(tok) -> list[list[int]]:
    return [u.tolist() for u in tok.encode_batch(WAVS)]


def no_partial_files() -> bool:
    return not [p for p in downloads_dir().rglob("*") if p.is_file() and (".partial" in p.name or p.name == KM)]


def test_real_preset_carries_the_published_pins():
    """Transcribed from tiagoCuervo/slm_scaling DATA.md (the revision, the address and the sha256) and
    slp-rl/slamkit config/tokeniser/feature_extractor/mhubert_25.yaml (layer 11, 500 units)."""
    p = PRESETS.get(NAME)
    assert (p.model, p.revision, p.layer, p.n_units, p.normalize, p.input_pad) == \
        (REPO, "a319086e1d343190047d02b7f81133fb310c1b90", 11, 500, False, 0)
    assert p.kmeans.sha256 == "03cc04a9c24fec4285e73e709c485756d8f116aa8e724eac555de6a7cf8d28ad"
    assert p.kmeans.url == "https://dl.fbaipublicfiles.com/textless_nlp/twist/speech_tokenizer/" + KM and p.pinned
    # GSLM's k-means files: textlesslib's checkpoint manager publishes their sha256 (transcribed); no peer pins
    # a commit of the HF HuBERT conversion, so those presets are not fully pinned
    gslm = PRESETS.get("hubert-base-l6-km100")
    assert (gslm.model, gslm.layer, gslm.kmeans.url, gslm.kmeans.sha256) == (
        "facebook/hubert-base-ls960", 6, "https://dl.fbaipublicfiles.com/textless_nlp/gslm/hubert/km100/km.bin",
        "f14a3104615485381fc489701d6761c9abbdbb0d43607cf55518a1e2891023fe") and not gslm.pinned
    assert PRESETS.get("hubert-base-l9-km500").kmeans.sha256 == \
        "4450dcbc90aa7d0553306a4b0fafef35c9b3c840468f02969273dfbb9db89a23"


def test_first_fetch_then_warm_offline_equals_hand_wired(hub, preset, assets, monkeypatch):
    hand = load_tokenizer(assets["hand"])
    tok = load_tokenizer(NAME)
    assert tok.identity == hand.identity and units(tok) == units(hand)
    assert tok.source["model_commit"] == preset["commit"] and tok.source["pinned"]
    assert hub.downloads("web") == [KM] and sorted(hub.downloads(REPO)) == ["config.json", "model.safetensors"]
    served = len(hub.log)
    again = load_tokenizer(NAME + ":input_pad=40")     # warm: nothing fetched again (an override is no new file)
    assert len([e for e in hub.log[served:] if e.get("file")]) == 0 and again.input_pad == 40
    hub.offline(monkeypatch)
    served = len(hub.log)
    offline = load_tokenizer(NAME)
    assert units(offline) == units(hand) and len(hub.log) == served


def test_cold_cache_offline_is_one_error(hub, preset, monkeypatch):
    hub.offline(monkeypatch)
    with pytest.raises(TokenizerError, match="HF_HUB_OFFLINE=1 forbids downloading it. Run the same command once"):
        load_tokenizer(NAME)
    assert no_partial_files()


def test_checksum_mismatch_keeps_nothing_then_retry(hub, preset, assets):
    hub.fault("web", KM, "corrupt", times=1)
    with pytest.raises(TokenizerError, match=f"has sha256 .* but {preset['entry'].kmeans.sha256} is pinned.*Nothing "
                                             "was kept"):
        load_tokenizer(NAME)
    assert no_partial_files()
    assert units(load_tokenizer(NAME)) == units(load_tokenizer(assets["hand"]))


@pytest.mark.parametrize("kind", ["truncate", "drop"])
def test_interrupted_kmeans_download_then_retry(hub, preset, assets, kind):
    hub.fault("web", KM, kind, times=1)
    with pytest.raises(TokenizerError, match="nothing was kept"):
        load_tokenizer(NAME)
    assert no_partial_files()
    assert units(load_tokenizer(NAME)) == units(load_tokenizer(assets["hand"]))


def test_interrupted_and_corrupted_model_download_then_retry(hub, preset, assets):
    hub.fault(REPO, "model.safetensors", "drop")           # every retry of huggingface_hub's fails too
    with pytest.raises(TokenizerError, match=f"cannot get {REPO} at revision {preset['commit']} from the Hub"):
        load_tokenizer(NAME)
    hub.heal()
    hub.fault(REPO, "model.safetensors", "corrupt", times=1)   # huggingface_hub cannot tell; the listing can
    with pytest.raises(TokenizerError, match="model.safetensors do not match the Hub's checksums.*deleted"):
        load_tokenizer(NAME)
    assert units(load_tokenizer(NAME)) == units(load_tokenizer(assets["hand"]))


def test_missing_repo_file_and_gated(hub, preset, monkeypatch):
    entry = preset["entry"]
    for broken, expected in [
        (TokenizerPreset(model="nobody/missing", revision="a" * 40, layer=2, n_units=K, kmeans=entry.kmeans),
         "no model nobody/missing on the Hub"),
        (TokenizerPreset(model=REPO, revision=entry.revision, layer=2, n_units=K,
                         kmeans=FileSource("gone.bin", "0" * 64, url=entry.kmeans.url.replace(KM, "gone.bin"))),
         "answered HTTP 404")]:
        monkeypatch.setitem(PRESETS._entries, NAME, Entry(NAME, broken, "tests"))
        with pytest.raises(TokenizerError, match=expected):
            load_tokenizer(NAME)
    monkeypatch.setitem(PRESETS._entries, NAME, Entry(NAME, entry, "tests"))
    hub.gate(REPO)
    with pytest.raises(TokenizerError, match=f"the Hub repository {REPO} is gated.*hf auth login"):
        load_tokenizer(NAME)
    assert any(e["status"] == 401 for e in hub.log)


def test_moved_revision_keeps_the_pinned_commit(hub, preset, assets, tmp_path):
    before = units(load_tokenizer(NAME))
    other = save_tiny_hubert(tmp_path / "other", n_layers=2, seed=9)
    moved = hub.add(REPO, other)                        # main moves to new weights ...
    assert moved != preset["commit"]
    assert units(load_tokenizer(NAME)) == before      # ... the preset still reads its commit
    # a Hub id with @main follows the branch: other weights, other units
    moved_tok = load_tokenizer(f"hubert:model={REPO}@main,layer=2,centroids={assets['npy']}")
    assert moved_tok.source["model_commit"] == moved
    assert moved_tok.identity["model_sha256"] != load_tokenizer(NAME).identity["model_sha256"]
    del hub.repos[("model", REPO)].commits[preset["commit"]]   # history rewritten: the pin is gone
    import shutil

    from slmeval.hubfiles import hub_cache_dir
    shutil.rmtree(hub_cache_dir())
    with pytest.raises(TokenizerError, match=f"revision '{preset['commit']}' does not exist in {REPO}"):
        load_tokenizer(NAME)


def test_hubert_spec_takes_a_hub_id(hub, preset, assets):
    """`hubert:model=org/name@rev` was refused with "no config.json"; now it is downloaded and checked."""
    tok = load_tokenizer(f"hubert:model={REPO}@{preset['commit']},layer=2,centroids={assets['npy']}")
    assert units(tok) == units(load_tokenizer(assets["hand"]))
    assert tok.source == {"model": REPO, "model_revision": preset["commit"], "model_commit": preset["commit"]}


def test_unpinned_preset_needs_allow_pickle(hub, preset, assets, monkeypatch):
    entry = preset["entry"]
    loose = TokenizerPreset(model=REPO, revision=None, layer=2, n_units=K,
                            kmeans=FileSource(KM, None, url=entry.kmeans.url))
    monkeypatch.setitem(PRESETS._entries, NAME, Entry(NAME, loose, "tests"))
    with pytest.raises(TokenizerError, match="no published checksum.*--allow-pickle"):
        load_tokenizer(NAME)
    tok = load_tokenizer(NAME, allow_pickle=True)
    assert tok.source["kmeans_sha256"] == hashlib.sha256(assets["km"]).hexdigest() and not tok.source["pinned"]


def test_a_pinned_hub_file_is_checked_and_a_bad_copy_evicted(hub, preset, assets):
    """A pinned file may live in a Hub repo (a dataset's archive, say): fetched with hf_hub_download, checked,
    and on a mismatch removed from huggingface_hub's cache too, so the retry downloads it again."""
    from slmeval.hubfiles import HubFileError, fetch_file, hub_cache_dir

    commit = hub.add("org/km", {"km/L11_km16.bin": assets["km"]}, repo_type="dataset")
    source = FileSource("L11_km16.bin", hashlib.sha256(assets["km"]).hexdigest(), repo="org/km", revision=commit,
                        path="km/L11_km16.bin", repo_type="dataset")
    hub.fault("org/km", "km/L11_km16.bin", "corrupt", times=1, repo_type="dataset")
    with pytest.raises(HubFileError, match="has sha256 .* is pinned"):
        fetch_file(source, "test")
    assert not [p for p in hub_cache_dir().rglob("*") if p.is_file() and p.name == hashlib.sha256(
        assets["km"]).hexdigest()] and no_partial_files()
    assert fetch_file(source, "test").read_bytes() == assets["km"]
    assert hub.downloads("org/km", "dataset") == ["km/L11_km16.bin"]    # the corrupted serve is not counted
