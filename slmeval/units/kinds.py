"""The built-in tokenizer kinds, `logmel` and `hubert`, registered in `slmeval.units.spec.TOKENIZERS`."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, get_type_hints

from slmeval.units.base import TokenizerError, UnitTokenizer
from slmeval.units.centroids import load_centroids
from slmeval.units.logmel import LogMelParams, LogMelTokenizer
from slmeval.units.spec import TOKENIZERS, TokenizerKind

_LOGMEL_TYPES: dict[str, type] = {name: hint for name, hint in get_type_hints(LogMelParams).items()
                                  if name in {f.name for f in fields(LogMelParams)}}


def _build_logmel(values: dict[str, Any], *, allow_pickle: bool, device: str) -> UnitTokenizer:
    values = dict(values)
    source = values.pop("centroids")
    centroids = load_centroids(source, allow_pickle=allow_pickle)
    dedup = values.pop("dedup", True)
    return LogMelTokenizer(centroids, params=LogMelParams(**values), dedup=dedup, centroids_source=str(source),
                           device=device)


def _build_hubert(values: dict[str, Any], *, allow_pickle: bool, device: str) -> UnitTokenizer:
    from slmeval.units.hubert import HubertTokenizer  # torch/transformers model code only when needed

    if ("centroids" in values) == ("quantizer" in values):
        raise TokenizerError("tokenizer hubert: give exactly one of centroids=FILE (k-means) and quantizer=FILE "
                             "(SpiritLM's linear quantizer, e.g. L11_quantizer_500.pt)")
    if "quantizer" in values:
        from slmeval.units.linear_quantizer import LinearQuantizer

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


TOKENIZERS.register("logmel", TokenizerKind(
    keys={"centroids": Path, "dedup": bool, **_LOGMEL_TYPES}, required=("centroids",), build=_build_logmel,
    description="log-mel frames -> nearest k-means centroid (fit with `slmeval units fit-kmeans`)"),
    origin=__name__)
TOKENIZERS.register("hubert", TokenizerKind(
    keys={"model": Path, "layer": int, "centroids": Path, "quantizer": Path, "dedup": bool, "input_pad": int,
          "normalize": bool},
    required=("model", "layer"), build=_build_hubert,
    description="a HF HuBERT (local folder or Hub id org/name@revision), layer L -> nearest k-means centroid, or "
                "SpiritLM's linear quantizer (quantizer=FILE); input_pad=40: slamkit's zero padding; "
                "normalize=true|false overrides preprocessor_config.json's do_normalize"),
    origin=__name__)
