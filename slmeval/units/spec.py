"""`load_tokenizer(spec)`: build a tokenizer from a preset name, a directory with `tokenizer.json` or a
`kind:key=value,...` string.

    "mhubert-25hz-l11-km500"            # a named preset (slmeval/units/presets.py), pinned downloads
    "mhubert-25hz-l11-km500:input_pad=40"
    "hubert:model=slprl/mhubert-base-25hz@a319086e1d343190047d02b7f81133fb310c1b90,layer=11,centroids=km.npy"
    "logmel:centroids=c.npy,n_mels=40"
    "hubert:model=/ckpt/mhubert-base-25hz,layer=11,centroids=/ckpt/km500.npy,dedup=false"
    "path/to/dir"   # holds tokenizer.json: {"kind": "logmel", "centroids": "centroids.npy", "n_mels": 40, ...}

Both forms share one key namespace; in tokenizer.json, relative `centroids` / `model` paths are relative
to the directory (a `model` that is not there and reads `org/name[@rev]` is a Hub id). A spec file may
also be {"preset": NAME, overrides...}. A "fit" entry in tokenizer.json (how the centroids were made) is informational.
The kinds (`logmel`, `hubert`, and any a plugin adds) are `TokenizerKind`s in `TOKENIZERS`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from slmeval.distributed import check_device
from slmeval.hubfiles import HUB_ID
from slmeval.io import parse_kv
from slmeval.plugins import PluginError, Registry
from slmeval.units.base import TokenizerError, UnitTokenizer
from slmeval.units.presets import OVERRIDES as PRESET_OVERRIDES
from slmeval.units.presets import PRESETS, build_preset

INFORMATIONAL = ("fit",)


@dataclass(frozen=True)
class TokenizerKind:
    """One kind of unit tokenizer: the keys its spec takes and how to build it from them.

    `build(values, allow_pickle=..., device=...)` gets the keys given, converted to their types
    (`Path` values in a tokenizer.json are relative to its folder) and returns a `UnitTokenizer`.
    """
    keys: dict[str, type]
    required: tuple[str, ...]
    build: Callable[..., UnitTokenizer]
    description: str = ""


# Kinds register where they are defined (logmel.py, hubert.py: this registry imports every module of
# slmeval/units/ on first use); other packages add theirs through the `slmeval.tokenizers` entry-point
# group (an entry point names a TokenizerKind; docs/plugins.md).
TOKENIZERS: Registry[TokenizerKind] = Registry("tokenizer", group="slmeval.tokenizers",
                                               package="slmeval.units")


def _kind(kind: str, origin: str) -> TokenizerKind:
    try:
        found = TOKENIZERS.get(kind)
    except PluginError as err:
        raise TokenizerError(f"{origin}: {err}") from None
    if not isinstance(found, TokenizerKind):
        raise TokenizerError(f"{origin}: tokenizer {kind!r} ({TOKENIZERS.origin(kind)}) is not a TokenizerKind")
    return found


def _expected(kind: str, spec: TokenizerKind) -> str:
    req = ", ".join(spec.required)
    opt = ", ".join(k for k in spec.keys if k not in spec.required)
    return f"'{kind}' takes keys: required {req}; optional {opt or 'none'}"


def _coerce(kind: str, typ: type, key: str, value: Any, base_dir: Path | None) -> Any:
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if typ is Path:
            path = Path(str(value)).expanduser()
            if base_dir is None or path.is_absolute():
                return path
            # relative to the spec file's folder when it is there; else as given (a Hub id org/name@rev)
            return base_dir / path if (base_dir / path).exists() or not HUB_ID.match(str(value)) else path
        if typ is int and isinstance(value, float) and not value.is_integer():
            raise ValueError("expected an integer")
        return typ(value)
    except ValueError as err:
        raise TokenizerError(f"tokenizer {kind}: {key}={value!r} is not a valid {typ.__name__} ({err})") from err


def _build(kind: str, params: dict[str, Any], *, allow_pickle: bool, device: str, base_dir: Path | None,
           origin: str) -> UnitTokenizer:
    spec = _kind(kind, origin)
    unknown = sorted(set(params) - set(spec.keys))
    missing = [k for k in spec.required if k not in params]
    if unknown or missing:
        what = "; ".join(filter(None, [f"unknown keys {unknown}" if unknown else "",
                                       f"missing keys {missing}" if missing else ""]))
        raise TokenizerError(f"{origin}: {what}. {_expected(kind, spec)}")
    values = {k: _coerce(kind, spec.keys[k], k, v, base_dir) for k, v in params.items()}
    return spec.build(values, allow_pickle=allow_pickle, device=device)


def parse_spec_string(spec: str) -> tuple[str, dict[str, str]]:
    kind, sep, rest = spec.partition(":")
    kind = kind.strip()
    if not sep or kind not in TOKENIZERS:
        raise TokenizerError(
            f"tokenizer spec {spec!r} is neither a preset ({', '.join(PRESETS.names())}), a directory holding "
            f"tokenizer.json, nor 'kind:key=value,...' with kind in {TOKENIZERS.names()}; e.g. "
            "'mhubert-25hz-l11-km500', 'logmel:centroids=c.npy,n_mels=40' or "
            "'hubert:model=DIR_OR_ORG/NAME@REV,layer=11,centroids=km.npy'")
    try:
        params = parse_kv(rest, f"tokenizer spec {spec!r}", error=TokenizerError)
    except TokenizerError as err:
        raise TokenizerError(f"{err}. {_expected(kind, _kind(kind, spec))}") from None
    return kind, params


def _preset(name: str, params: dict[str, Any], *, allow_pickle: bool, device: str, origin: str) -> UnitTokenizer:
    unknown = sorted(set(params) - set(PRESET_OVERRIDES))
    if unknown:
        raise TokenizerError(f"{origin}: unknown keys {unknown}; a preset takes {', '.join(PRESET_OVERRIDES)}")
    values = {k: _coerce(name, PRESET_OVERRIDES[k], k, v, None) for k, v in params.items()}
    return build_preset(name, values, allow_pickle=allow_pickle, device=device)


def load_spec_file(cfg: Path, *, allow_pickle: bool = False, device: str = "cpu") -> UnitTokenizer:
    """A JSON spec file: {"kind": ..., keys...} (paths relative to its folder) or {"preset": NAME, overrides...}."""
    try:
        payload = json.loads(cfg.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TokenizerError(f"{cfg}: not valid JSON ({err})") from err
    if isinstance(payload, dict) and "preset" in payload:
        params = {k: v for k, v in payload.items() if k != "preset" and k not in INFORMATIONAL}
        if str(payload["preset"]) not in PRESETS:
            raise TokenizerError(f"{cfg}: preset {payload['preset']!r} is not a tokenizer preset; presets: "
                                 f"{', '.join(PRESETS.names())}")
        return _preset(str(payload["preset"]), params, allow_pickle=allow_pickle, device=device, origin=str(cfg))
    if not isinstance(payload, dict) or "kind" not in payload:
        raise TokenizerError(f"{cfg}: expected a JSON object with a 'kind' field ({TOKENIZERS.names()}) or a "
                             f"'preset' field ({', '.join(PRESETS.names())})")
    params = {k: v for k, v in payload.items() if k != "kind" and k not in INFORMATIONAL}
    return _build(str(payload["kind"]), params, allow_pickle=allow_pickle, device=device,
                  base_dir=cfg.parent, origin=str(cfg))


def load_tokenizer(spec: str, *, allow_pickle: bool = False, device: str = "cpu") -> UnitTokenizer:
    """Build a unit tokenizer from a preset name (`NAME[:key=value,...]`), a directory holding tokenizer.json,
    or a 'kind:key=value,...' string."""
    check_device(device)
    as_path = Path(str(spec)).expanduser()
    if as_path.is_dir():
        cfg = as_path / "tokenizer.json"
        if not cfg.is_file():
            raise TokenizerError(f"{as_path}: directory has no tokenizer.json")
        return load_spec_file(cfg, allow_pickle=allow_pickle, device=device)
    name, _, rest = str(spec).partition(":")
    if name.strip() in PRESETS:
        params = parse_kv(rest, f"tokenizer spec {spec!r}", error=TokenizerError) if rest.strip() else {}
        return _preset(name.strip(), params, allow_pickle=allow_pickle, device=device, origin=f"tokenizer {spec!r}")
    kind, params = parse_spec_string(str(spec))
    return _build(kind, params, allow_pickle=allow_pickle, device=device, base_dir=None,
                  origin=f"tokenizer spec {spec!r}")
