"""Models layer: checkpoint formats (adapters), Hub ids, the unit → token mapping, model identity.

    load_lm(model, model_args=..., device=..., dtype=..., n_units=K) -> LoadedLM

`model` is a local directory or a Hub id (`org/name[@revision]`); the adapter is chosen from
config.json (see docs/models.md for the formats and where each fact comes from).
"""
from __future__ import annotations

from slmeval.models.base import (ADAPTERS, DTYPES, Adapter, Checkpoint, HFCore, LMCore, LoadedLM, ModelError,
                                 Recipe, UnitMapping, parse_kv)
from slmeval.models.loader import UNIT_TOKENIZER_FILE, ModelPlan, choose_adapter, inspect_model, load_lm
from slmeval.models.mapping import CONVENTIONS, resolve_mapping

__all__ = ["ADAPTERS", "CONVENTIONS", "DTYPES", "UNIT_TOKENIZER_FILE", "Adapter", "Checkpoint", "HFCore", "LMCore",
           "LoadedLM", "ModelError", "ModelPlan", "Recipe", "UnitMapping", "choose_adapter", "inspect_model", "load_lm",
           "parse_kv", "resolve_mapping"]
