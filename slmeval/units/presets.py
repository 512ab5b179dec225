"""Named speech-tokenizer presets: `--tokenizer mhubert-25hz-l11-km500` instead of three downloads and a
conversion. A preset names a HuBERT on the Hub at a pinned commit, its layer, the k-means file with its
pinned sha256, and the waveform handling the peers that published it use. docs/units.md lists them with
their sources.

    --tokenizer NAME                   # the preset
    --tokenizer NAME:input_pad=40      # with overrides (the `hubert` kind's keys: input_pad, dedup, normalize)

Files are fetched once and checked (slmeval/hubfiles.py); a pinned sklearn pickle is converted to a plain
`.npy` once its checksum matches (the pin is the trust: no --allow-pickle needed), and only the `.npy` is
read afterwards. A preset whose k-means file had no published checksum (`sha256=None`; none of the built-in
ones) would be trusted on first use only with --allow-pickle, its sha256 recorded. A preset without a
pinned HuBERT commit (`revision=None`: the GSLM ones) reads the repo's main and records the commit. Other packages add presets through the
`slmeval.tokenizer_presets` entry-point group (an entry point names a `TokenizerPreset`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from slmeval.hubfiles import FileSource, HubFileError, fetch_file, hub_snapshot
from slmeval.io import sha256_file
from slmeval.plugins import PluginError, Registry
from slmeval.units.base import TokenizerError, UnitTokenizer
from slmeval.units.centroids import convert_kmeans_pickle, load_centroids

OVERRIDES = {"input_pad": int, "dedup": bool, "normalize": bool}


@dataclass(frozen=True)
class TokenizerPreset:
    """HuBERT `model` (Hub repo) at `revision`, layer `layer` -> nearest of the k-means centroids in `kmeans`."""
    model: str
    revision: str | None            # a commit sha (pinned), or None: the repo's main (recorded, not pinned)
    layer: int
    kmeans: FileSource
    n_units: int
    normalize: bool = False         # per-utterance waveform standardisation before HuBERT
    input_pad: int = 0
    dedup: bool = True
    description: str = ""
    sources: tuple[str, ...] = field(default=())   # "repo path: what it says" — docs/units.md shows them

    @property
    def pinned(self) -> bool:
        return self.kmeans.sha256 is not None and self.revision is not None

    def pins(self) -> str:
        rev = f"@{self.revision}" if self.revision else "@main (no pinned commit)"
        km = f"sha256 {self.kmeans.sha256}" if self.kmeans.sha256 else "no published sha256"
        return f"{self.model}{rev} layer {self.layer}; {self.kmeans.name} ({km})"


PRESETS: Registry[TokenizerPreset] = Registry("tokenizer preset", group="slmeval.tokenizer_presets")

_FB = "https://dl.fbaipublicfiles.com"
_TWIST_KM = "mhubert_base_25hz_cp_mls_cv_sp_fisher_L11_km500.bin"
PRESETS.register("mhubert-25hz-l11-km500", TokenizerPreset(
    model="slprl/mhubert-base-25hz", revision="a319086e1d343190047d02b7f81133fb310c1b90", layer=11,
    kmeans=FileSource(_TWIST_KM, "03cc04a9c24fec4285e73e709c485756d8f116aa8e724eac555de6a7cf8d28ad",
                      url=f"{_FB}/textless_nlp/twist/speech_tokenizer/{_TWIST_KM}"),
    n_units=500, normalize=False,
    description="TWIST's 25 Hz multilingual HuBERT, layer 11, k-means 500 (TWIST, Slam, slm_scaling)",
    sources=("tiagoCuervo/slm_scaling DATA.md: model revision, k-means address and sha256, no waveform normalisation",
             "slp-rl/slamkit config/tokeniser/feature_extractor/mhubert_25.yaml: model, k-means address, layer 11",
             "facebookresearch/textlesslib textless/checkpoint_manager/__init__.py: mhubert-base-25hz-kmeans-500, "
             "the same sha256")),
    origin=__name__)
# GSLM (Lakhotia et al. 2021): HuBERT-base LS960, layer 6, k-means 50/100/200/500; HuBERT's own layer-9
# k-means 500 (fairseq examples/hubert; slamkit's default tokeniser). textlesslib's checkpoint manager
# gives each file's address and sha256 and its DENSE_MODELS the layers; it reads fairseq's
# hubert_base_ls960.pt, slmeval the HF conversion facebook/hubert-base-ls960, whose commit no peer pins
# (the commit used is recorded).
_TEXTLESS = "facebookresearch/textlesslib textless/checkpoint_manager/__init__.py"
_GSLM_SHA = {50: "d01a7d5bc2c54b7b5f25f321ba525b4d230b06e3927f90bad0394198bc89f494",
             100: "f14a3104615485381fc489701d6761c9abbdbb0d43607cf55518a1e2891023fe",
             200: "b3c46c9cdd1707ad852dd53c359aa73942e79d53c432a9a8a419ed046408024b",
             500: "411c8668e1314751404f58636f935fc73540a6793890435da4a8ffadf157398e"}
for _k, _sha in _GSLM_SHA.items():
    PRESETS.register(f"hubert-base-l6-km{_k}", TokenizerPreset(
        model="facebook/hubert-base-ls960", revision=None, layer=6,
        kmeans=FileSource(f"hubert_base_ls960_km{_k}.bin", _sha, url=f"{_FB}/textless_nlp/gslm/hubert/km{_k}/km.bin"),
        n_units=_k, description=f"GSLM's HuBERT-base LS960, layer 6, k-means {_k}",
        sources=(f"{_TEXTLESS}: hubert-base-ls960-kmeans-{_k} address and sha256",
                 "facebookresearch/textlesslib textless/__init__.py DENSE_MODELS: hubert-base-ls960 layer 6")),
        origin=__name__)
PRESETS.register("hubert-base-l9-km500", TokenizerPreset(
    model="facebook/hubert-base-ls960", revision=None, layer=9,
    kmeans=FileSource("hubert_base_ls960_L9_km500.bin", "4450dcbc90aa7d0553306a4b0fafef35c9b3c840468f02969273dfbb9db89a23",
                      url=f"{_FB}/hubert/hubert_base_ls960_L9_km500.bin"),
    n_units=500, description="HuBERT-base LS960, layer 9, k-means 500 (slamkit's default tokeniser)",
    sources=(f"{_TEXTLESS}: hubert-base-ls960-layer-9-kmeans-500 address and sha256",
             "slp-rl/slamkit config/tokeniser/feature_extractor/hubert_base_l9.yaml: model, address, layer 9")),
    origin=__name__)


def get_preset(name: str) -> TokenizerPreset:
    try:
        preset = PRESETS.get(name)
    except PluginError as err:
        raise TokenizerError(str(err)) from None
    if not isinstance(preset, TokenizerPreset):
        raise TokenizerError(f"tokenizer preset {name!r} ({PRESETS.origin(name)}) is not a TokenizerPreset")
    return preset


def preset_centroids(name: str, preset: TokenizerPreset, *, allow_pickle: bool) -> Path:
    """The preset's k-means centres as a plain `.npy` (downloaded, checked, converted once)."""
    what = f"tokenizer preset {name}"
    if preset.kmeans.sha256 is None and not allow_pickle:
        raise TokenizerError(f"{what}: its k-means file {preset.kmeans.where()} has no published checksum, and "
                             "it is an sklearn pickle (loading one runs code stored in it). Pass --allow-pickle to "
                             "trust it on first use (its sha256 is recorded), or use a pinned preset")
    try:
        raw = fetch_file(preset.kmeans, what)
    except HubFileError as err:
        raise TokenizerError(str(err)) from None
    npy = raw.with_name(raw.name + ".npy")
    if not npy.is_file():   # the checksum matched (or trust was given): unpickle once, keep only numbers
        convert_kmeans_pickle(raw, npy)     # what `slmeval units convert-kmeans --allow-pickle` does
    return npy


def build_preset(name: str, overrides: dict[str, object], *, allow_pickle: bool, device: str) -> UnitTokenizer:
    from slmeval.units.hubert import HubertTokenizer

    preset = get_preset(name)
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise TokenizerError(f"tokenizer preset {name}: unknown keys {unknown}; a preset takes "
                             f"{', '.join(OVERRIDES)} (other choices make another tokenizer: use hubert:...)")
    centroids_file = preset_centroids(name, preset, allow_pickle=allow_pickle)
    try:
        model_dir, commit = hub_snapshot(preset.model, preset.revision, f"tokenizer preset {name}")
    except HubFileError as err:
        raise TokenizerError(str(err)) from None
    settings = {"input_pad": preset.input_pad, "dedup": preset.dedup, "normalize": preset.normalize, **overrides}
    tok = HubertTokenizer(model_dir, preset.layer, load_centroids(centroids_file), dedup=bool(settings["dedup"]),
                          device=device, centroids_source=str(centroids_file), input_pad=int(settings["input_pad"]),
                          normalize=bool(settings["normalize"]))
    if tok.n_units != preset.n_units:
        raise TokenizerError(f"tokenizer preset {name}: {centroids_file} holds {tok.n_units} centroids, the preset "
                             f"says {preset.n_units}")
    shown = "".join(f",{k}={v}" for k, v in overrides.items())
    tok.source = {"preset": name + (":" + shown[1:] if shown else ""), "model": preset.model, "model_commit": commit,
                  "layer": preset.layer, "kmeans": preset.kmeans.where(),
                  "kmeans_sha256": preset.kmeans.sha256 or sha256_file(centroids_file.with_suffix("")),
                  "pinned": preset.pinned}
    return tok
