"""`hubert` encoder: a local HF `HubertModel` directory, layer L features -> nearest k-means centroid,
or -> SpiritLM's linear quantizer (`quantizer=FILE`, slmeval/units/linear_quantizer.py).

Layer numbering follows textlesslib / slamkit: layer L is the output of the L-th transformer layer,
`hidden_states[L]` of HF's `output_hidden_states` (hidden_states[0] is the input of the first layer).
Layers after L are dropped from the model: they cannot change layer L and would only cost time.

Padding safety: HuBERT-base's convolutional front end group-normalises each channel over *time*, so
zero padding would change the features of the real frames too (and base models were trained without
an attention mask). Units must not depend on which other files share a batch, so waveforms of any
lengths are batched right-padded with that norm taken over each utterance's own frames and an
attention mask for the transformer (slmeval/units/batching.py): the units are those of batch size 1
(tests/test_units_pipeline.py), and the batch runs on the device with the argmin there too.

`input_pad=N` adds N zero samples at each end of the waveform before the model, as slamkit's HuBERT
feature extractor does (`F.pad(wav, (40, 40))`, slp-rl/slamkit
slamkit/feature_extractor/hubert_feature_extractor.py): it changes the frame grid and, through the
time-wise group norm, the features, so it is part of the identity (only when non-zero, so the
identities of unpadded tokenizers, and their caches, are unchanged).
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from slmeval.io import sha256_file
from slmeval.units.base import IMPLEMENTATION_VERSION, SAMPLE_RATE, TokenizerError, UnitTokenizer, dedup_units
from slmeval.units.batching import MaskedChannelNorm, conv_output_lengths, frames_mask, pad_batch
from slmeval.units.centroids import centroids_sha256, check_centroid_dim, load_centroids
from slmeval.units.linear_quantizer import LinearQuantizer
from slmeval.units.spec import TOKENIZERS, TokenizerKind

log = logging.getLogger(__name__)

def model_weights_sha256(model_dir: Path) -> str:
    """sha256 of the weight file transformers loads (or, if sharded, of the sorted per-file hashes).

    safetensors wins over pytorch_model*.bin when both are present, as in `from_pretrained`.
    """
    files = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("pytorch_model*.bin"))
    if not files:
        raise TokenizerError(f"{model_dir}: no model weights (*.safetensors or pytorch_model*.bin) found")
    if len(files) == 1:
        return sha256_file(files[0])
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}:{sha256_file(f)}\n".encode())
    return h.hexdigest()


def _reads_do_normalize(model_dir: Path) -> bool:
    cfg = model_dir / "preprocessor_config.json"
    if not cfg.is_file():
        return False
    try:
        return bool(json.loads(cfg.read_text()).get("do_normalize", False))
    except json.JSONDecodeError as err:
        raise TokenizerError(f"{cfg}: not valid JSON ({err})") from err


def _min_input_samples(conv_kernel: list[int], conv_stride: list[int]) -> int:
    """Shortest waveform for which the conv feature encoder yields one frame (400 for HuBERT-base)."""
    need = 1
    for kernel, stride in reversed(list(zip(conv_kernel, conv_stride))):
        need = (need - 1) * stride + kernel
    return need


class HubertTokenizer(UnitTokenizer):
    def __init__(self, model_dir: str | Path, layer: int, centroids: np.ndarray | None, *, dedup: bool = True,
                 device: str = "cpu", centroids_source: str = "<array>", input_pad: int = 0,
                 quantizer: LinearQuantizer | None = None, normalize: bool | None = None):
        """Units = nearest of `centroids` (k-means), or `quantizer` (SpiritLM's linear quantizer).
        `normalize`: standardise each waveform first; None = as preprocessor_config.json's do_normalize."""
        import torch
        from transformers import HubertModel

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise TokenizerError(f"{model_dir}: not a HuggingFace model directory (no config.json)")
        try:
            model = HubertModel.from_pretrained(str(model_dir))
        except Exception as err:  # transformers raises many types for a bad checkpoint
            raise TokenizerError(f"{model_dir}: cannot load as HubertModel ({err})") from err
        n_layers = model.config.num_hidden_layers
        if not 0 <= layer <= n_layers:
            raise TokenizerError(f"{model_dir}: layer={layer} out of range; this model has layers 0..{n_layers}")
        if (centroids is None) == (quantizer is None):
            raise TokenizerError("hubert: give exactly one of centroids (k-means) and quantizer (SpiritLM's linear "
                                 "quantizer)")
        if quantizer is not None and quantizer.dim != model.config.hidden_size:
            raise TokenizerError(f"{centroids_source}: the quantizer reads {quantizer.dim}-dim features but the hubert "
                                 f"({model_dir.name}) encoder produces {model.config.hidden_size}")
        if centroids is not None:
            check_centroid_dim(centroids, model.config.hidden_size, centroids_source, f"hubert ({model_dir.name})")
        # Keep at least one layer: the hidden-state recorder captures hidden_states[0] as that layer's input.
        model.encoder.layers = model.encoder.layers[: max(layer, 1)]
        # group-norm front end (HuBERT-base): normalise over each utterance's own frames (padded batches)
        first = model.feature_extractor.conv_layers[0]
        self._norm = None
        if isinstance(getattr(first, "layer_norm", None), torch.nn.GroupNorm):
            self._norm = first.layer_norm = MaskedChannelNorm(first.layer_norm)
        self.model = model.to(device).eval()
        self.device = device
        self.layer = layer
        self._torch = torch
        self.do_normalize = _reads_do_normalize(model_dir) if normalize is None else bool(normalize)
        if input_pad < 0:
            raise TokenizerError(f"hubert: input_pad={input_pad}: expected a number of samples ≥ 0")
        self.input_pad = int(input_pad)
        need = _min_input_samples(list(model.config.conv_kernel), list(model.config.conv_stride))
        self.min_samples = max(need - 2 * self.input_pad, 1)
        self.quantizer = quantizer
        if quantizer is None:
            self.centroids = np.asarray(centroids, dtype=np.float64)
            self.n_units = int(self.centroids.shape[0])
            quantization = {"centroids_sha256": centroids_sha256(self.centroids)}
        else:
            # vocab_size + 1: an all-blank utterance keeps the blank index (see linear_quantizer.py).
            self.n_units = quantizer.vocab_size + 1
            quantization = {"quantizer": "spiritlm_linear", "quantizer_sha256": quantizer.sha256}
        self.dedup = bool(dedup)
        self.identity = {
            "kind": "hubert",
            "version": IMPLEMENTATION_VERSION,
            "sample_rate": SAMPLE_RATE,
            "model_sha256": model_weights_sha256(model_dir),
            # the architecture (norms, eps, conv front end) changes the units as much as the weights do
            "config_sha256": sha256_file(model_dir / "config.json"),
            "layer": layer,
            "hidden_size": int(model.config.hidden_size),
            "do_normalize": self.do_normalize,
            "padding": "none: units as at batch size 1 (masked, length-bucketed batches)",
            "n_units": self.n_units,
            **quantization,
            "dedup": self.dedup,
        }
        if self.input_pad:
            self.identity["input_pad"] = self.input_pad

    def _prepare(self, wav: np.ndarray) -> np.ndarray:
        if self.do_normalize:
            # Same per-utterance normalisation as Wav2Vec2FeatureExtractor(do_normalize=True).
            x = wav.astype(np.float64)
            wav = ((x - x.mean()) / np.sqrt(x.var() + 1e-7)).astype(np.float32)
        if self.input_pad:
            wav = np.pad(wav, self.input_pad)     # zeros at both ends of the model input (slamkit)
        return wav

    def _run(self, wavs: list[np.ndarray]) -> list:
        """Layer-L features [frames, d] of each waveform, on the device: one right-padded batch with an
        attention mask, the first conv layer's norm over real frames only (slmeval.units.batching)."""
        torch = self._torch
        batch, lengths = pad_batch([self._prepare(w) for w in wavs], self.device)
        conv0 = self.model.feature_extractor.conv_layers[0].conv
        mask = frames_mask(lengths, batch.shape[1]).long() if len(wavs) > 1 else None
        # no TF32 in the convolutions: units must not depend on the GPU generation
        with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            if self._norm is not None:
                self._norm.lengths = conv_output_lengths(lengths, conv0.kernel_size[0], conv0.stride[0])
            try:
                hidden = self.model(batch, attention_mask=mask, output_hidden_states=True).hidden_states[self.layer]
            finally:
                if self._norm is not None:
                    self._norm.lengths = None
            frames = self.model._get_feat_extract_output_lengths(lengths).tolist()
        return [h[:n] for h, n in zip(hidden, frames)]

    def features(self, wav: np.ndarray) -> np.ndarray:
        return self._run([wav])[0].float().cpu().numpy()

    def features_batch(self, wavs: list[np.ndarray]) -> list[np.ndarray]:
        return [f.float().cpu().numpy() for f in self._run(wavs)]

    def device_features(self, wavs: list[np.ndarray]) -> list:
        return self._run(wavs)

    def _to_units(self, feats) -> np.ndarray:
        if self.quantizer is None:
            return super()._to_units(feats)
        if not isinstance(feats, np.ndarray):      # SpiritLM's quantizer runs on the host
            feats = feats.float().cpu().numpy()
        units = self.quantizer(feats)
        return dedup_units(units) if self.dedup else units


# -- the `hubert` tokenizer kind (`--tokenizer kind=hubert,model=...,layer=...`, tokenizer.json) -----

def _build_hubert(values: dict[str, Any], *, allow_pickle: bool, device: str) -> UnitTokenizer:
    if ("centroids" in values) == ("quantizer" in values):
        raise TokenizerError("tokenizer hubert: give exactly one of centroids=FILE (k-means) and quantizer=FILE "
                             "(SpiritLM's linear quantizer, e.g. L11_quantizer_500.pt)")
    if "quantizer" in values:
        source, centroids, quantizer = values["quantizer"], None, LinearQuantizer(values["quantizer"])
    else:
        source, quantizer = values["centroids"], None
        centroids = load_centroids(source, allow_pickle=allow_pickle)
    model_dir, hub = _model_folder(values["model"])
    tok = HubertTokenizer(model_dir, values["layer"], centroids, dedup=values.get("dedup", True),
                          device=device, centroids_source=str(source), input_pad=values.get("input_pad", 0),
                          quantizer=quantizer, normalize=values.get("normalize"))
    tok.source = hub
    return tok


def _model_folder(model: str | Path) -> tuple[Path, dict | None]:
    """A local folder, else a Hub id `org/name[@revision]` (downloaded once, checked: slmeval/hubfiles.py)."""
    from slmeval.hubfiles import HUB_ID, HubFileError, hub_snapshot

    local = Path(model).expanduser()
    match = HUB_ID.match(str(model))
    if local.exists() or not match or str(model).startswith((".", "/", "~")):
        return local, None
    try:
        folder, commit = hub_snapshot(match.group("repo"), match.group("rev"), f"tokenizer model={model}")
    except HubFileError as err:
        raise TokenizerError(str(err)) from None
    return folder, {"model": match.group("repo"), "model_revision": match.group("rev") or "main",
                    "model_commit": commit}


TOKENIZERS.register("hubert", TokenizerKind(
    keys={"model": Path, "layer": int, "centroids": Path, "quantizer": Path, "dedup": bool, "input_pad": int,
          "normalize": bool},
    required=("model", "layer"), build=_build_hubert,
    description="a HF HuBERT (local folder or Hub id org/name@revision), layer L -> nearest k-means centroid, or "
                "SpiritLM's linear quantizer (quantizer=FILE); input_pad=40: slamkit's zero padding; "
                "normalize=true|false overrides preprocessor_config.json's do_normalize"),
    origin=__name__)
