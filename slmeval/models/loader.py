"""`load_lm`: a directory or Hub id → the right adapter → a LoadedLM with a fully sourced unit mapping.

Steps, each failing with one clear `ModelError` before any audio work:
  1. resolve `--model` (local directory or Hub id, revision checked) — `slmeval.models.hub`
  2. read config.json and choose the adapter from it (`--model-args adapter=NAME` overrides)
  3. the adapter builds the network (hidden states + LM head) and says what the checkpoint fixes
     about the mapping; `--model-args` may not contradict it unless force=true
  4. specials / table inside the vocabulary; with K known, units 0..K-1 must fit too
  5. identity: sha256 over config + weights + tokenizer files
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from slmeval.distributed import check_device
from slmeval.models.base import (ADAPTERS, DTYPES, Adapter, Checkpoint, LoadedLM, ModelError, Recipe, as_bool,
                                 parse_kv)
from slmeval.models.hub import resolve_model
from slmeval.models.identity import behaviour_files, file_hashes, model_sha256
from slmeval.models.mapping import MAPPING_KEYS, check_specials, resolve_mapping
from slmeval.plugins import PluginError

GENERIC_ARGS = frozenset({"adapter", "revision", "pretrained", "force", "convention", "trust_remote_code",
                          "max_length", *MAPPING_KEYS})


def read_config(directory: Path, reference: str) -> dict:
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{reference}: not a model directory (expected {config_file})")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelError(f"{config_file}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise ModelError(f"{config_file}: expected a JSON object")
    return config


def _adapter_class(name: str, why: str) -> type[Adapter]:
    try:
        return ADAPTERS.get(name)
    except PluginError as err:
        raise ModelError(f"{why}: {err}") from None


def choose_adapter(config: dict, asked: str | None, config_file: str = "config.json",
                   directory: Path | None = None) -> tuple[Adapter, str]:
    """(adapter, why it was chosen). Specific adapters beat the fallback (hf); two specific claims are ambiguous."""
    if asked:
        return _adapter_class(asked, f"--model-args adapter={asked}")(), f"--model-args adapter={asked}"
    claims: list[tuple[Adapter, str]] = []
    fallbacks: list[tuple[Adapter, str]] = []
    for entry in ADAPTERS.entries():
        if entry.obj is None:      # a broken third-party adapter: only matters when asked for by name
            continue
        adapter = entry.obj()
        reason = adapter.detect(config) or (adapter.detect_files(directory, config) if directory else None)
        if reason:
            (fallbacks if adapter.fallback else claims).append((adapter, f"{entry.name}: {reason}"))
    if len(claims) > 1:
        raise ModelError(f"{config_file}: several model adapters read this format "
                         f"({'; '.join(r for _, r in claims)}); pick one with --model-args adapter=NAME")
    if claims or fallbacks:
        return (claims or fallbacks)[0]
    raise ModelError(f"{config_file}: model_type {config.get('model_type')!r} is not a format slmeval can load. "
                     f"Adapters: {', '.join(ADAPTERS.names())} (docs/models.md says which formats each reads). "
                     "Pass --model-args adapter=NAME, or add an adapter through the 'slmeval.models' entry-point "
                     "group")


def _normalise_args(model: str | Path | None, model_args: dict[str, str] | str | None) -> tuple[str, dict[str, str]]:
    args = parse_kv(model_args) if isinstance(model_args, str) or model_args is None else dict(model_args)
    args = {k: str(v) for k, v in args.items()}
    pretrained = args.pop("pretrained", None)           # lm-eval habit: --model-args pretrained=ID
    if pretrained and model and str(model) != pretrained:
        raise ModelError(f"--model {model} and --model-args pretrained={pretrained} name different models")
    reference = str(model or pretrained or "")
    if not reference:
        raise ModelError("no model given: pass --model DIR_OR_HUB_ID (or --model-args pretrained=ID)")
    return reference, args


@dataclass(frozen=True)
class ModelPlan:
    """A checkpoint resolved to files and read enough to know its format and its family's recipe — no
    weights loaded yet (steps 1-2 above, `inspect_model`); `load_lm(plan=...)` continues from it."""
    reference: str
    args: dict[str, str]
    ckpt: Checkpoint
    adapter: Adapter
    reason: str
    recipe: Recipe | None
    unit_tokenizer: Path | None     # the unit-tokenizer spec saved beside the checkpoint (UNIT_TOKENIZER_FILE)


# A unit-tokenizer spec saved in the checkpoint folder (a preset name or a full spec, slmeval/units/spec.py
# `load_spec_file`); not `tokenizer.json`, which is transformers' text tokenizer (SpiritLM ships one).
UNIT_TOKENIZER_FILE = "unit_tokenizer.json"


def inspect_model(model: str | Path | None, *, model_args: dict[str, str] | str | None = None) -> ModelPlan:
    """Resolve `--model` (downloading a Hub id once) and read its config: adapter, recipe, saved tokenizer."""
    reference, args = _normalise_args(model, model_args)
    if "max_length" in args and not (str(args["max_length"]).isdigit() and int(args["max_length"]) >= 2):
        raise ModelError(f"--model-args max_length={args['max_length']!r}: expected an integer >= 2 (tokens per "
                         "sequence, start token included)")
    resolved = resolve_model(reference, args.get("revision"))
    config = read_config(resolved.directory, reference)
    adapter, reason = choose_adapter(config, args.get("adapter"), str(resolved.directory / "config.json"),
                                     resolved.directory)
    unknown = set(args) - GENERIC_ARGS - adapter.extra_args
    if unknown:
        raise ModelError(f"--model-args: unknown key(s) {sorted(unknown)}; known: "
                         f"{sorted(GENERIC_ARGS | adapter.extra_args)}")
    ckpt = Checkpoint(resolved.directory, config, reference, resolved.hub)
    saved = resolved.directory / UNIT_TOKENIZER_FILE
    return ModelPlan(reference, args, ckpt, adapter, reason, adapter.recipe(ckpt), saved if saved.is_file() else None)


def load_lm(model: str | Path | None, *, model_args: dict[str, str] | str | None = None, device: str = "cpu",
            dtype: str = "float32", n_units: int | None = None, plan: ModelPlan | None = None) -> LoadedLM:
    """Load a checkpoint (local directory or Hub id) over units. `n_units` = the tokenizer's K, when known:
    used to infer a convention from special tokens and to check that every unit fits the vocabulary.
    `plan`: the checkpoint as `inspect_model` resolved it (not resolved again)."""
    check_device(device)
    if dtype not in DTYPES:
        raise ModelError(f"--dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    plan = plan or inspect_model(model, model_args=model_args)
    reference, args, ckpt, adapter, reason = plan.reference, plan.args, plan.ckpt, plan.adapter, plan.reason
    force = as_bool("force", args.get("force"))
    resolved, config = ckpt, ckpt.config
    weights = adapter.weight_files(ckpt)
    if not weights:
        raise ModelError(f"{resolved.directory}: no weight files found (adapter {adapter.name} expects "
                         f"{adapter.weights_hint})")
    core = adapter.load(ckpt, args, DTYPES[dtype])
    core.module.to(device).eval()
    vocab = int(core.head()[0].shape[0])
    facts = adapter.mapping_facts(ckpt, core)
    if n_units is not None and "n_units" in facts and facts["n_units"][0] != n_units and not force:
        raise ModelError(f"the tokenizer has K={n_units} units but this {adapter.name} checkpoint was trained on "
                         f"K={facts['n_units'][0]} ({facts['n_units'][1]}): wrong tokenizer? (force=true overrides)")
    mapping = resolve_mapping(config, args, facts=facts, vocab_size=vocab, n_units=n_units, force=force)
    check_specials(mapping, vocab)
    max_length = args.get("max_length") or core.max_length
    files = file_hashes(behaviour_files(resolved.directory, weights), resolved.directory)
    lm = LoadedLM(core=core, mapping=mapping, path=reference, device=torch.device(device), dtype=DTYPES[dtype],
                  vocab_size=vocab, max_length=int(max_length) if max_length else None, sha256=model_sha256(files),
                  model_args=args, adapter=adapter.name, adapter_reason=reason, files=files, hub=resolved.hub)
    if n_units is not None:
        lm.check_units(n_units)
    return lm
