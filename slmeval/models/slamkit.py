"""The `slamkit` adapter: checkpoints as slamkit's `UnitLM.save_pretrained` writes them (the Slam models).

Facts, from slp-rl/slamkit (see docs/models.md for the paths):
- config.json `model_type: speech_language_model` (UnitLMConfig), the base LM's config nested under
  `base_config` (Qwen2 / Llama / OPT ...), the resized vocabulary in the top-level `vocab_size`;
- weights under the `lm.` prefix (UnitLM.base_model_prefix = "lm"), the usual transformers file names;
  a tied LM head is not stored;
- UnitTokeniser: pad 0, BOS = EOS = 1, units `<Un k>` at k + max(pad, bos, eos) + 1 = k + 2, and the
  model vocabulary = len(tokeniser) = K + 2.
Loading builds the base LM from `base_config` and loads the `lm.*` tensors into it: no flags, no
`trust_remote_code`, no conversion step.
"""
from __future__ import annotations

import torch

from slmeval.models.base import ADAPTERS, Adapter, Checkpoint, HFCore, LMCore, ModelError, Recipe, family_recipe
from slmeval.models.weights import load_into, read_state_dict

PREFIX = "lm."
SOURCE = "adapter:slamkit (UnitTokeniser: units right after the specials)"
# Keys transformers writes into a config that say nothing about the architecture (or that we set).
_NOT_ARCHITECTURE = ("dtype", "torch_dtype", "architectures", "_name_or_path", "transformers_version")


def base_config_dict(ckpt: Checkpoint) -> dict:
    base = ckpt.config.get("base_config")
    where = ckpt.directory / "config.json"
    if not isinstance(base, dict) or not isinstance(base.get("model_type"), str):
        raise ModelError(f"{where}: a slamkit config needs `base_config` with the base LM's model_type "
                         "(Qwen2 / Llama / OPT ...)")
    vocab = ckpt.config.get("vocab_size")
    if not isinstance(vocab, int) or vocab < 2:
        raise ModelError(f"{where}: `vocab_size` must be the unit vocabulary size (K + 2), got {vocab!r}")
    return base


@ADAPTERS.register("slamkit")
class SlamkitAdapter(Adapter):
    """slamkit UnitLM checkpoints (Slam): model_type speech_language_model, base LM under lm., units at +2."""

    name = "slamkit"
    weights_hint = "model.safetensors (or shards + index) with tensors under 'lm.'"

    def detect(self, config: dict) -> str | None:
        if config.get("model_type") == "speech_language_model":
            return "config.json model_type='speech_language_model' (slamkit UnitLM)"
        return None

    def load(self, ckpt: Checkpoint, args: dict[str, str], dtype: torch.dtype) -> LMCore:
        from transformers import AutoConfig, AutoModelForCausalLM

        base = base_config_dict(ckpt)
        fields = {k: v for k, v in base.items() if k not in _NOT_ARCHITECTURE and k != "model_type"}
        fields["vocab_size"] = ckpt.config["vocab_size"]   # the resized vocabulary; base_config may hold the text one
        try:
            config = AutoConfig.for_model(base["model_type"], **fields)
        except ValueError as err:
            raise ModelError(f"{ckpt.directory / 'config.json'}: base_config.model_type {base['model_type']!r}: "
                             f"{str(err).splitlines()[0]}") from None
        # Built in `dtype` (weights cast as they load), not `.to(dtype)` afterwards: that would also round
        # the float32 RoPE frequencies (Qwen2 / Llama `rotary_emb.inv_freq`) to bfloat16 and move every
        # position's angle, unlike slamkit's UnitLM.from_pretrained(torch_dtype=...) and transformers.
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        state = read_state_dict(ckpt.directory)
        inner = {k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)}
        if not inner:
            raise ModelError(f"{ckpt.directory}: no tensors under '{PREFIX}' — not saved by slamkit's UnitLM "
                             f"(first keys: {sorted(state)[:3]})")
        load_into(model, inner, ckpt.directory, tied=bool(config.tie_word_embeddings))
        return HFCore(model)

    def mapping_facts(self, ckpt: Checkpoint, core: LMCore) -> dict[str, tuple[object, str]]:
        base = base_config_dict(ckpt)
        specials = {k: base.get(f"{k}_token_id") for k in ("pad", "bos", "eos")}
        if any(not isinstance(v, int) for v in specials.values()):
            raise ModelError(f"{ckpt.directory / 'config.json'}: base_config lacks integer pad/bos/eos token ids "
                             f"({specials})")
        offset = max(specials.values()) + 1
        if set(specials.values()) != set(range(offset)):
            # Interleaved (text + speech) SpeechLMs keep the text tokeniser's specials; their units are
            # added text tokens, which this adapter cannot place.
            raise ModelError(f"{ckpt.directory / 'config.json'}: special tokens {specials} do not occupy ids "
                             f"0..{offset - 1}, so this is not slamkit's unit-only layout (an interleaved text + speech "
                             "model?). Pass --model-args offset=N,bos_id=,eos_id=,pad_id=,force=true if you know them")
        return {"offset": (offset, SOURCE + f": max(pad, bos, eos) + 1 = {offset}"),
                "bos_id": (specials["bos"], "config.json:base_config.bos_token_id"),
                "eos_id": (specials["eos"], "config.json:base_config.eos_token_id"),
                "pad_id": (specials["pad"], "config.json:base_config.pad_token_id"),
                "n_units": (ckpt.config["vocab_size"] - offset, f"config.json:vocab_size - {offset}")}


    def recipe(self, ckpt: Checkpoint) -> Recipe | None:
        # slamkit's evaluation (config/eval.yaml) tokenises with config/tokeniser/unit_hubert_25.yaml: mHuBERT
        # 25 Hz layer 11 + TWIST's k-means 500, the waveform zero-padded by 40 samples at each end
        # (slamkit/feature_extractor/hubert_feature_extractor.py `extract`), no normalisation.
        try:
            n_units = self.mapping_facts(ckpt, None)["n_units"][0]   # config.json only (no network needed)
        except ModelError:
            n_units = None       # load_lm reports the config's problem itself
        return family_recipe("slamkit", "mhubert-25hz-l11-km500", "input_pad=40", n_units, "slamkit", SOURCES)


SOURCES = ("slp-rl/slamkit config/eval.yaml (tokeniser: unit_hubert_25), config/tokeniser/unit_hubert_25.yaml + "
           "feature_extractor/mhubert_25.yaml, slamkit/feature_extractor/hubert_feature_extractor.py (F.pad 40); "
           "protocol: slamkit/model/unit_lm.py log_likelihood")
