"""The `hf` adapter: any transformers `AutoModelForCausalLM` checkpoint (TWIST, hand-converted models).

The fallback adapter: it reads every config.json whose `model_type` transformers knows (or that names
remote code in `auto_map`), when no more specific adapter claims the checkpoint. TWIST checkpoints
(slprl/textlesslib) are plain HF LMs whose config.json carries the unit `offset`; see docs/models.md.
"""
from __future__ import annotations

import torch

from slmeval.models.base import ADAPTERS, Adapter, Checkpoint, HFCore, LMCore, ModelError, Recipe, as_bool, family_recipe
from slmeval.models.mapping import config_facts


def known_model_type(model_type: object) -> bool:
    from transformers import CONFIG_MAPPING

    return isinstance(model_type, str) and model_type in CONFIG_MAPPING


@ADAPTERS.register("hf")
class HFAdapter(Adapter):
    """Any transformers AutoModelForCausalLM checkpoint (TWIST: unit offset in config.json)."""

    name = "hf"
    fallback = True

    def detect(self, config: dict) -> str | None:
        model_type = config.get("model_type")
        if known_model_type(model_type):
            return f"config.json model_type={model_type!r} is a transformers architecture"
        if isinstance(config.get("auto_map"), dict):
            return "config.json names remote code (auto_map; needs trust_remote_code=true)"
        return None

    def load(self, ckpt: Checkpoint, args: dict[str, str], dtype: torch.dtype) -> LMCore:
        from safetensors import SafetensorError
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        trust = as_bool("trust_remote_code", args.get("trust_remote_code"))
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()     # its load report would precede our one error; we report below
        try:
            # ignore_mismatched_sizes: transformers then lists the mismatches (refused below) instead of
            # raising an error that points at the silenced report
            model, info = AutoModelForCausalLM.from_pretrained(ckpt.directory, dtype=dtype, trust_remote_code=trust,
                                                               output_loading_info=True, ignore_mismatched_sizes=True)
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as err:
            # transformers' own message (truncated files, bad configs, ...), under one clear heading
            raise ModelError(f"{ckpt.reference}: transformers cannot load this checkpoint as a causal LM: "
                             f"{str(err).strip().splitlines()[0]}") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        # transformers initialises missing or mis-shaped tensors at random: that would score another model
        missing = sorted(info.get("missing_keys") or ())
        shapes = sorted(f"{key} {tuple(saved)} in the file, {tuple(wanted)} in config.json"
                        for key, saved, wanted in info.get("mismatched_keys") or ())
        if missing or shapes:
            raise ModelError(f"{ckpt.directory}: weights do not match the architecture in config.json ("
                             + "; ".join(([f"missing {missing[:4]}"] if missing else []) + shapes[:4]) + ")")
        return HFCore(model)

    def mapping_facts(self, ckpt: Checkpoint, core: LMCore) -> dict[str, tuple[object, str]]:
        return config_facts(ckpt.config)

    def recipe(self, ckpt: Checkpoint) -> Recipe | None:
        # A TWIST checkpoint is told by `offset` in config.json (textlesslib examples/twist/speech_lm.py);
        # its tokenizer is textlesslib's "mhubert-base-25hz" + "kmeans" 500 (examples/twist/twist_generation.py),
        # no padding. textlesslib publishes no likelihood scoring: no protocol to follow.
        offset, vocab = ckpt.config.get("offset"), ckpt.config.get("vocab_size")
        if not isinstance(offset, int) or isinstance(offset, bool) or not isinstance(vocab, int):
            return None
        recipe = family_recipe("TWIST", "mhubert-25hz-l11-km500", "", vocab - offset, None,
                               "facebookresearch/textlesslib examples/twist/twist_generation.py, "
                               "examples/twist/speech_lm.py")
        return Recipe(recipe.family, recipe.tokenizer, None, recipe.source, recipe.note or (
            "textlesslib publishes no likelihood scoring for TWIST: no family protocol"))
