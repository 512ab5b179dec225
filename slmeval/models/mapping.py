"""Resolving the unit → token mapping, with the source of every field and no silent guess.

Order, first that speaks wins:

    --model-args  >  convention=NAME  >  the checkpoint (adapter facts: config.json, the format's fixed
    convention)  >  a convention the config's special tokens imply (needs K)  >  error

A --model-args / convention value that contradicts what the checkpoint itself says is an error unless
force=true (then recorded as forced). A mapping that cannot be determined is an error that says what
to pass — never offset 0 and a wrong number.
"""
from __future__ import annotations

from typing import Mapping

from slmeval.models.base import ModelError, UnitMapping

SPECIALS = ("bos_id", "eos_id", "pad_id")
MAPPING_KEYS = ("offset", *SPECIALS)

# Named conventions (docs/models.md cites where each comes from):
#   twist       — config.json carries `offset`; specials from the config (nothing fixed here).
#   slamkit     — offset 2, BOS = EOS = 1, pad 0.
#   slm_scaling — units 0–499 (offset 0), EOS = 500 doubles as the start token, PAD = 501, no BOS.
CONVENTIONS: dict[str, dict[str, int | None]] = {
    "twist": {},
    "slamkit": {"offset": 2, "bos_id": 1, "eos_id": 1, "pad_id": 0},
    "slm_scaling": {"offset": 0, "bos_id": None, "eos_id": 500, "pad_id": 501},
}


def as_int_or_none(key: str, value: object) -> int | None:
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
        return None
    if isinstance(value, list):   # some configs hold a list of EOS ids: the first is the canonical one
        return as_int_or_none(key, value[0] if value else None)
    if isinstance(value, bool):
        raise ModelError(f"{key}={value!r}: expected an integer or 'none'")
    if isinstance(value, float) and not value.is_integer():     # int() would truncate 4.7 to a wrong offset
        raise ModelError(f"{key}={value!r}: expected an integer or 'none'")
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ModelError(f"{key}={value!r}: expected an integer or 'none'") from None


def config_facts(config: Mapping) -> dict[str, tuple[object, str]]:
    """What a plain HF config.json says: `offset` (TWIST) and the special-token ids it declares."""
    facts: dict[str, tuple[object, str]] = {}
    for key, cfg_key in (("offset", "offset"), ("bos_id", "bos_token_id"), ("eos_id", "eos_token_id"),
                         ("pad_id", "pad_token_id")):
        if config.get(cfg_key) is not None:
            facts[key] = (as_int_or_none(f"config.json:{cfg_key}", config[cfg_key]), f"config.json:{cfg_key}")
    return facts


def implied_convention(facts: Mapping[str, tuple[object, str]], vocab_size: int,
                       n_units: int | None) -> tuple[str, str] | None:
    """A convention the special tokens pin down (only with K known), and the reason, or None."""
    if n_units is None or "offset" in facts or "unit_ids" in facts:
        return None
    values = {k: facts[k][0] for k in SPECIALS if k in facts}
    if vocab_size == n_units + 2 and values.get("pad_id") == 0 and values.get("bos_id") == 1 \
            and values.get("eos_id") == 1:
        return "slamkit", f"pad 0, BOS = EOS = 1 and vocab {vocab_size} = K {n_units} + 2"
    if vocab_size == n_units + 2 and values.get("eos_id") == n_units and values.get("pad_id") == n_units + 1:
        return "slm_scaling", f"EOS = K = {n_units}, PAD = K + 1 and vocab {vocab_size} = K + 2"
    return None


def resolve_mapping(config: Mapping, model_args: Mapping[str, str], *,
                    facts: Mapping[str, tuple[object, str]] | None = None, vocab_size: int | None = None,
                    n_units: int | None = None, force: bool = False) -> UnitMapping:
    """Resolve the mapping; `facts` default to what config.json says (the hf adapter's view)."""
    facts = dict(config_facts(config) if facts is None else facts)
    convention = model_args.get("convention")
    if convention is not None and convention not in CONVENTIONS:
        raise ModelError(f"--model-args convention={convention!r}: expected one of {', '.join(CONVENTIONS)}")
    implied = None if convention else implied_convention(facts, vocab_size or 0, n_units)
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    conflicts: list[str] = []
    for key in MAPPING_KEYS:
        asked: tuple[object, str] | None = None
        if key in model_args:
            asked = (as_int_or_none(f"--model-args {key}", model_args[key]), "model_args")
        elif convention and key in CONVENTIONS[convention]:
            asked = (CONVENTIONS[convention][key], f"convention:{convention}")
        if asked is not None and key in facts and facts[key][0] != asked[0]:
            conflicts.append(f"{key}={asked[0]} (from {asked[1]}) but the checkpoint says {key}={facts[key][0]} "
                             f"({facts[key][1]})")
            asked = (asked[0], f"{asked[1]} (forced over {facts[key][1]}={facts[key][0]})")
        if asked is not None:
            values[key], sources[key] = asked
        elif key in facts:
            values[key], sources[key] = facts[key]
        elif implied is not None and key in CONVENTIONS[implied[0]]:
            values[key], sources[key] = CONVENTIONS[implied[0]][key], f"inferred:{implied[0]} ({implied[1]})"
        else:
            values[key], sources[key] = None, "absent"
    if conflicts and not force:
        raise ModelError("--model-args contradict the checkpoint: " + "; ".join(conflicts)
                         + ". Drop them, or pass force=true to override (recorded in results.json)")
    unit_ids = facts.get("unit_ids")
    if unit_ids is not None and sources["offset"] == "absent":
        sources["unit_ids"] = unit_ids[1]        # the format lists each unit's token (SpiritLM)
        del sources["offset"]
    elif unit_ids is not None and not force:
        raise ModelError(f"--model-args contradict the checkpoint: offset={values['offset']} (from "
                         f"{sources['offset']}) but the checkpoint lists each unit's token ({unit_ids[1]}). Drop it, "
                         "or pass force=true to override (recorded in results.json)")
    elif unit_ids is not None:
        sources["offset"] += f" (forced over {unit_ids[1]})"
        unit_ids = None
    if unit_ids is None and values["offset"] is None and convention == "twist":
        # twist fixes nothing itself: a TWIST checkpoint is defined by the `offset` its config.json carries
        raise ModelError(
            "--model-args convention=twist reads the unit offset from config.json's `offset` key (TWIST "
            "checkpoints carry it), and this checkpoint's config.json has none. Pass --model-args offset=N "
            f"(token = unit + N), or convention={'|'.join(c for c in CONVENTIONS if c != 'twist')} if it follows one")
    if unit_ids is None and values["offset"] is None:
        hint = (f"the config's special tokens (bos {values['bos_id']}, eos {values['eos_id']}, pad "
                f"{values['pad_id']}, vocab {vocab_size}) match no known convention for K={n_units} units"
                if n_units is not None else "K is unknown here (no tokenizer given)")
        raise ModelError(
            "cannot tell which token id each unit is: config.json has no `offset`, no --model-args "
            f"offset/convention was given, and {hint}. Pass --model-args offset=N (token = unit + N) or "
            f"convention={'|'.join(c for c in CONVENTIONS if c != 'twist')}")
    prefix = facts.get("prefix_ids")
    if prefix is not None:
        sources["prefix_ids"] = prefix[1]
    return UnitMapping(offset=values["offset"], bos_id=values["bos_id"], eos_id=values["eos_id"],  # type: ignore[arg-type]
                       pad_id=values["pad_id"], unit_ids=unit_ids[0] if unit_ids else None,  # type: ignore[arg-type]
                       prefix_ids=prefix[0] if prefix else (), sources=sources)  # type: ignore[arg-type]


def check_specials(mapping: UnitMapping, vocab_size: int) -> None:
    """Every special / table id must be a token of the model."""
    for key in SPECIALS:
        value = getattr(mapping, key)
        if value is not None and not 0 <= value < vocab_size:
            raise ModelError(f"{key}={value} (from {mapping.sources[key]}) is outside the vocabulary [0, {vocab_size})")
    if mapping.offset is not None and mapping.offset < 0:
        raise ModelError(f"offset={mapping.offset} (from {mapping.sources['offset']}): expected ≥ 0")
    for name, ids in (("unit_ids", mapping.unit_ids or ()), ("prefix_ids", mapping.prefix_ids)):
        bad = [t for t in ids if not 0 <= t < vocab_size]
        if bad:
            raise ModelError(f"{name} (from {mapping.sources.get(name)}) holds token ids {bad[:5]} outside the "
                             f"vocabulary [0, {vocab_size})")
