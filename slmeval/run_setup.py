"""Resolve everything a run stands on before any work: the model (Hub id downloaded, format, family recipe),
its tokenizer and the protocol — each with where it came from, printed under the results table.

Tokenizer, first that applies:
  1. `--tokenizer` (a preset, a spec, a folder; an object in the Python API);
  2. the unit-tokenizer spec saved in the checkpoint folder (`unit_tokenizer.json`, slmeval/models/loader.py);
  3. the family recipe (the adapter's `recipe`: the preset the family was trained with, e.g. Slam's
     `mhubert-25hz-l11-km500:input_pad=40`).
A default (2, 3) is built only when a task holds audio (pre-tokenised tasks need none). A tokenizer that
contradicts the recipe is used as asked, with a warning. A task with audio and no tokenizer known is an
error here, before any data is read.

Protocol: the default is one protocol for every model, so two models scored by the same command compare.
`--protocol recipe` selects the family's own (to reproduce its paper); otherwise, when the family has one
that differs, the recommendation is printed.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from slmeval.data import READERS
from slmeval.distributed import check_device
from slmeval.models import LoadedLM, ModelError, ModelPlan, inspect_model
from slmeval.plugins import PluginError
from slmeval.task_loader.registry import TaskConfig
from slmeval.units import PRESETS, TokenizerError, load_spec_file, load_tokenizer

log = logging.getLogger(__name__)
RECIPE = "recipe"


@dataclass
class RunSetup:
    plan: ModelPlan | None                # None: the caller passed a loaded model (or a transformers object)
    tokenizer: Any                        # a UnitTokenizer, or None (pre-tokenised tasks only)
    protocol: str                         # the protocol name to build
    sources: dict = field(default_factory=dict)      # what / where from, for results.json and the console
    warnings: list[str] = field(default_factory=list)


def audio_tasks(configs: list[TaskConfig]) -> tuple[list[str], list[str]]:
    """(tasks that certainly read audio, tasks that may): a reader that yields units says so with
    `yields_units = True`; slmeval's other readers read audio; another package's reader that says nothing
    may do either (its units or its audio show when it runs)."""
    certain, maybe = [], []
    for cfg in configs:
        try:
            reader = READERS.get(cfg.source)
        except PluginError:
            maybe.append(cfg.name)          # unknown or broken: read_task says so with its own error
            continue
        units = getattr(reader, "yields_units", None)
        if units is None and READERS.origin(cfg.source).startswith("entry point"):
            maybe.append(cfg.name)
        elif not units:
            certain.append(cfg.name)
    return certain, maybe


def resolve_setup(model, *, model_args, tokenizer, protocol: str, configs: list[TaskConfig], allow_pickle: bool,
                  device: str) -> RunSetup:
    from slmeval.models.instance import is_model_object

    check_device(device)              # a bad --device is known before anything is downloaded
    held = isinstance(model, LoadedLM) or is_model_object(model)     # loaded already: no folder, no recipe
    plan = None if held else inspect_model(model, model_args=model_args)
    recipe = plan.recipe if plan is not None else None
    setup = RunSetup(plan, None, protocol)
    certain, maybe = audio_tasks(configs)
    audio = bool(certain or maybe)
    if tokenizer is not None:
        setup.tokenizer = (load_tokenizer(tokenizer, allow_pickle=allow_pickle, device=device)
                           if isinstance(tokenizer, str) else tokenizer)
        spec, origin = (tokenizer if isinstance(tokenizer, str) else type(tokenizer).__name__), "--tokenizer"
    elif plan is not None and plan.unit_tokenizer is not None:
        spec, origin = plan.unit_tokenizer.name, f"{plan.unit_tokenizer} (saved with the checkpoint)"
        if audio:
            setup.tokenizer = load_spec_file(plan.unit_tokenizer, allow_pickle=allow_pickle, device=device)
    elif recipe is not None and recipe.tokenizer is not None:
        spec, origin = recipe.tokenizer, f"recipe: {recipe.family} ({recipe.source})"
        if audio:
            setup.tokenizer = load_tokenizer(recipe.tokenizer, allow_pickle=allow_pickle, device=device)
    else:
        spec, origin = None, None
        if certain:
            tasks = ", ".join(certain)
            why = (recipe.note if recipe is not None and recipe.note else
                   "its format does not say which tokenizer made its units")
            raise TokenizerError(f"task(s) {tasks} hold audio, and no tokenizer is known for this model: {why}. Pass "
                                 f"--tokenizer NAME (presets: {', '.join(PRESETS.names())}) or a spec "
                                 "(docs/units.md)")
    from_recipe = origin is not None and origin.startswith("recipe:")
    if setup.tokenizer is not None and recipe is not None and recipe.tokenizer is not None and not from_recipe:
        setup.warnings += _contradictions(setup.tokenizer, recipe, origin)
    if spec is not None:
        setup.sources["tokenizer"] = {"spec": spec, "from": origin,
                                      **({"source": setup.tokenizer.source} if getattr(setup.tokenizer, "source", None)
                                         else {})}
    _protocol(setup, recipe)
    if recipe is not None:
        setup.sources["recipe"] = {"family": recipe.family, "tokenizer": recipe.tokenizer, "protocol": recipe.protocol,
                                   "source": recipe.source, **({"note": recipe.note} if recipe.note else {})}
    for note in setup.warnings:
        log.warning(note)
    return setup


def resolve_setup_for_world(world, model, **kwargs) -> RunSetup:
    """`resolve_setup` under torchrun: rank 0 resolves first — downloading a Hub model and a tokenizer preset's
    files into the caches — and the other ranks then resolve from those caches with downloads off (HF_HUB_OFFLINE
    for the call: not one request, and the commit rank 0 got), as task_data.resolve_for_world does for data.
    A rank on another node whose caches are not rank 0's downloads for itself. An error on rank 0 stops every
    rank with that one message."""
    if world.world_size == 1:
        return resolve_setup(model, **kwargs)
    setup, error = None, None
    if world.is_main:
        try:
            setup = resolve_setup(model, **kwargs)
        except Exception as err:   # noqa: BLE001 - sent to every rank (else they would wait for rank 0), re-raised
            err.reported_by_rank0 = True   # type: ignore[attr-defined]  (the CLI prints it once)
            error, own = (type(err).__name__, str(err)), err
    error = world.broadcast(error)
    if error is not None:
        if world.is_main:
            raise own
        from slmeval.distributed import DistributedError

        failure = DistributedError(f"rank 0 of {world.world_size} failed while resolving the model and tokenizer: "
                                   f"{error[0]}: {error[1]}")
        failure.reported_by_rank0 = True   # type: ignore[attr-defined]
        raise failure
    if setup is not None:
        return setup
    try:
        with _downloads_off():
            return resolve_setup(model, **kwargs)
    except (ValueError, OSError) as err:   # not in this node's caches (another node, caches not shared): fetch here
        log.info("rank %d: not in this node's caches (%s); downloading here", world.rank, str(err).splitlines()[0])
        return resolve_setup(model, **kwargs)


@contextmanager
def _downloads_off():
    """HF_HUB_OFFLINE for one call: slmeval's download code (hubfiles, data/remote) reads the variable, and
    huggingface_hub its constant, at call time."""
    import os

    from huggingface_hub import constants

    before, flag = os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"], constants.HF_HUB_OFFLINE = "1", True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = flag
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before


def _protocol(setup: RunSetup, recipe) -> None:
    if setup.protocol == RECIPE:
        if recipe is None or recipe.protocol is None:
            family = f"the {recipe.family} family" if recipe is not None else "this model's format"
            why = f" ({recipe.note})" if recipe is not None and recipe.note and recipe.protocol is None else ""
            raise ModelError(f"--protocol recipe: {family} has no scoring protocol of its own{why}; pick one "
                             "(slmeval, slamkit, cuervo; docs/models.md)")
        setup.protocol = recipe.protocol
        setup.sources["protocol"] = {"name": recipe.protocol, "from": f"--protocol recipe: {recipe.family} "
                                                                      f"({recipe.source})"}
        return
    setup.sources["protocol"] = {"name": setup.protocol, "from": "--protocol" + (
        " (the default: one protocol for every model, so runs compare)" if setup.protocol == "slmeval" else "")}
    if recipe is not None and recipe.protocol is not None and recipe.protocol != setup.protocol.split("+")[0]:
        setup.sources["protocol"]["recommendation"] = (
            f"this is a {recipe.family} checkpoint: `--protocol recipe` scores it as its family does "
            f"({recipe.protocol}), to reproduce its paper's numbers")


def _contradictions(tok, recipe, origin: str) -> list[str]:
    """Differences between the tokenizer in use and the family recipe's preset, as far as they are knowable."""
    from slmeval.units.presets import get_preset

    name, _, overrides = recipe.tokenizer.partition(":")
    preset = get_preset(name)
    expected = {"kind": "hubert", "n_units": preset.n_units, "layer": preset.layer, "input_pad": preset.input_pad,
                "do_normalize": preset.normalize}
    for piece in filter(None, overrides.split(",")):
        key, _, value = piece.partition("=")
        expected[{"normalize": "do_normalize"}.get(key, key)] = int(value) if value.isdigit() else value == "true"
    actual = {"kind": tok.identity.get("kind"), "n_units": tok.n_units, "layer": tok.identity.get("layer"),
              "input_pad": tok.identity.get("input_pad", 0), "do_normalize": tok.identity.get("do_normalize")}
    diff = [f"{k} {actual[k]!r} (recipe: {v!r})" for k, v in expected.items() if actual.get(k) != v]
    source = getattr(tok, "source", None) or {}
    if source.get("model") and source["model"] != preset.model:
        diff.append(f"model {source['model']} (recipe: {preset.model})")
    if not diff:
        return []
    return [f"the tokenizer from {origin} contradicts the {recipe.family} recipe ({recipe.tokenizer}: "
            f"{preset.pins()}): {'; '.join(diff)}. Scores with units the model was not trained on are near chance"]


def setup_lines(results: dict) -> list[str]:
    """Model, tokenizer, unit→token mapping and protocol, each with its source (printed under the table)."""
    cfg, prov = results["config"], results.get("provenance", {})
    setup = prov.get("setup") or {}
    hub = prov.get("model_hub") or cfg.get("hub")
    where = (f"{hub['repo_id']}@{hub.get('revision') or 'main'} (commit {hub['commit_sha']})" if hub
             else f"{cfg['model']} (local folder)")
    lines = [f"model      {where}; format {cfg['adapter']} — {cfg.get('adapter_reason', '')}"]
    tok = setup.get("tokenizer")
    if tok:
        src = tok.get("source") or {}
        pins = "".join(f", {k}={v}" for k, v in src.items() if k != "preset")
        lines.append(f"tokenizer  {src.get('preset') or tok['spec']}{pins} — from {tok['from']}")
    mapping = cfg.get("unit_mapping") or {}
    srcs = mapping.get("sources", {})
    rule = (f"token = unit + {mapping['offset']} ({srcs.get('offset', '?')})" if mapping.get("offset") is not None
            else f"table of {len(mapping.get('unit_ids') or [])} ids ({srcs.get('unit_ids', '?')})")
    specials = "; ".join(f"{k.removesuffix('_id').upper()} {mapping[k]} ({srcs.get(k, '?')})"
                         for k in ("bos_id", "eos_id", "pad_id") if mapping.get(k) is not None)
    lines.append(f"unit→token {rule}" + (f"; {specials}" if specials else ""))
    proto = setup.get("protocol") or {"name": cfg["protocol"]["name"], "from": "--protocol"}
    lines.append(f"protocol   {cfg['protocol']['name']} — from {proto['from']}")
    if proto.get("recommendation"):
        lines.append(f"           recommended: {proto['recommendation']}")
    return lines + [f"warning    {w}" for w in setup.get("warnings", [])]
