"""The `spiritlm` adapter: Meta's SpiritLM checkpoints (a Llama-2 `LlamaForCausalLM` + its tokenizer).

Facts, from facebookresearch/spiritlm (paths in docs/models.md):
- the model is `LlamaForCausalLM.from_pretrained(path)` and the tokenizer
  `LlamaTokenizer.from_pretrained(path, add_bos_token=True, add_eos_token=False)`
  (spiritlm/model/spiritlm_model.py, `Spiritlm.__init__`);
- a speech input becomes the string `[Speech]` + `[Hu<k>]...` (deduplicated HuBERT units), tokenized
  with that tokenizer, so BOS `[Speech]` `[Hu..]`... (`Spiritlm._build_prompt`,
  spiritlm/speech_tokenizer/spiritlm_tokenizer.py `units_to_string`);
- the expressive variant interleaves `[Pi<k>]` (pitch) and `[St<k>]` (style) tokens with the units;
  the base variant has `[Hu<k>]` only.
config.json is a plain Llama config, so the checkpoint is recognised by its tokenizer (it holds
`[Hu0]`). Unit k is whatever id the tokenizer gives `[Hu<k>]` (never assumed
contiguous); `[Speech]` is the start prefix, as many tokens as the tokenizer makes of it, context only.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from slmeval.models.base import ADAPTERS, Adapter, Checkpoint, LMCore, ModelError, Recipe, as_bool
from slmeval.models.hf import HFAdapter

SPEECH = "[Speech]"
UNIT_TOKEN = re.compile(r"\[Hu(\d+)\]")
EXPRESSIVE = ("[Pi0]", "[St0]")    # pitch / style tokens: only the expressive variant has them
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "added_tokens.json", "special_tokens_map.json",
                   "tokenizer.model")
SOURCE = "tokenizer ([Hu<k>] looked up, as SpiritLM's units_to_string writes them)"


def _mentions(directory: Path, token: str) -> bool:
    """Whether any tokenizer file holds `token` literally (JSON text, or a piece of a sentencepiece model)."""
    needle = token.encode()
    return any(needle in f.read_bytes() for f in (directory / n for n in TOKENIZER_FILES) if f.is_file())


def load_tokenizer(directory: Path):
    """SpiritLM's own tokenizer call (spiritlm/model/spiritlm_model.py)."""
    from transformers import LlamaTokenizer

    if not any((directory / n).is_file() for n in ("tokenizer.json", "tokenizer.model")):
        raise ModelError(f"{directory}: no tokenizer (tokenizer.json or tokenizer.model): a SpiritLM checkpoint "
                         "holds its tokenizer beside the weights, and its [Hu<k>] tokens say which id each unit is")
    try:
        return LlamaTokenizer.from_pretrained(str(directory), add_bos_token=True, add_eos_token=False)
    except (OSError, ValueError, ImportError, TypeError) as err:
        raise ModelError(
            f"{directory}: cannot load the SpiritLM tokenizer as SpiritLM does (LlamaTokenizer, "
            f"add_bos_token=True): {str(err).splitlines()[0] if str(err) else type(err).__name__}. A checkpoint whose "
            "tokenizer is only tokenizer.model needs `pip install sentencepiece protobuf` to be read") from None


def unit_table(tokenizer, where: Path) -> tuple[int, ...]:
    """Token id of `[Hu<k>]` for k = 0, 1, ...: every unit token, with no gap in k."""
    vocab = tokenizer.get_vocab()
    ks = sorted(int(m.group(1)) for name in vocab if (m := UNIT_TOKEN.fullmatch(name)))
    if not ks:
        raise ModelError(f"{where}: the tokenizer has no [Hu<k>] unit tokens: not a SpiritLM checkpoint")
    if ks != list(range(len(ks))):
        missing = sorted(set(range(ks[-1] + 1)) - set(ks))[:5]
        raise ModelError(f"{where}: the tokenizer's unit tokens skip [Hu{missing[0]}] (missing: {missing}); "
                         "unit k must be [Hu<k>] for every k below the largest")
    return tuple(int(vocab[f"[Hu{k}]"]) for k in ks)


def speech_prefix(tokenizer, table: tuple[int, ...], where: Path) -> tuple[int | None, tuple[int, ...]]:
    """(BOS id, prefix ids) of a speech string, read off the tokenizer's own encoding of
    `[Speech]` + every unit token: it must be BOS, the prefix, then exactly one token per unit."""
    ids = list(tokenizer(SPEECH + "".join(f"[Hu{k}]" for k in range(len(table))))["input_ids"])
    if len(ids) < len(table) or tuple(ids[len(ids) - len(table):]) != table:
        raise ModelError(f"{where}: the tokenizer does not encode '{SPEECH}[Hu0][Hu1]...' as one token per unit "
                         "after the prefix; cannot place the units")
    head = ids[:len(ids) - len(table)]
    bos = tokenizer.bos_token_id
    if bos is not None and head[:1] == [bos]:
        head = head[1:]
    else:
        bos = None
    if not head:
        raise ModelError(f"{where}: the tokenizer encodes '{SPEECH}' as nothing")
    return bos, tuple(head)


@ADAPTERS.register("spiritlm")
class SpiritLMAdapter(Adapter):
    """SpiritLM checkpoints (Meta): a Llama whose tokenizer has [Hu<k>] unit tokens; speech after [Speech]."""

    name = "spiritlm"

    def detect(self, config: dict) -> str | None:
        return None        # a plain Llama config: told apart by its tokenizer (detect_files)

    def detect_files(self, directory: Path, config: dict) -> str | None:
        if _mentions(directory, "[Hu0]"):     # SpiritLM's unit token names; [Speech] may be several tokens
            return "the tokenizer holds [Hu<k>] unit tokens (SpiritLM's speech tokens)"
        return None

    def __init__(self) -> None:
        self.force = False

    def load(self, ckpt: Checkpoint, args: dict[str, str], dtype: torch.dtype) -> LMCore:
        self.force = as_bool("force", args.get("force"))  # consulted by mapping_facts (expressive checkpoints)
        return HFAdapter().load(ckpt, args, dtype)      # LlamaForCausalLM, as SpiritLM loads it

    def mapping_facts(self, ckpt: Checkpoint, core: LMCore) -> dict[str, tuple[object, str]]:
        tokenizer = load_tokenizer(ckpt.directory)
        table = unit_table(tokenizer, ckpt.directory)
        vocab = tokenizer.get_vocab()
        unit_source = SOURCE
        if any(t in vocab for t in EXPRESSIVE):
            if not self.force:
                raise ModelError(
                    f"{ckpt.directory}: an expressive SpiritLM checkpoint (its tokenizer has [Pi*] pitch and [St*] "
                    "style tokens): its speech strings interleave them with the [Hu*] units, which slmeval's unit "
                    "tokenizers do not produce. Pass --model-args force=true to score [Hu] units alone (recorded)")
            unit_source += "; expressive checkpoint scored on [Hu] units alone (force=true)"
        bos, prefix = speech_prefix(tokenizer, table, ckpt.directory)
        facts: dict[str, tuple[object, str]] = {
            "unit_ids": (table, unit_source),
            "prefix_ids": (prefix, f"tokenizer: '{SPEECH}' → {len(prefix)} token(s), as SpiritLM's _build_prompt "
                                   "starts a speech input"),
        }
        if bos is not None:
            facts["bos_id"] = (bos, "tokenizer: bos_token (add_bos_token=True, as SpiritLM loads it)")
        if tokenizer.eos_token_id is not None:
            facts["eos_id"] = (int(tokenizer.eos_token_id), "tokenizer: eos_token")
        pad = ckpt.config.get("pad_token_id")
        if isinstance(pad, int) and 0 <= pad < len(vocab):    # Llama-2 configs may say -1 / null: no pad then
            facts["pad_id"] = (pad, "config.json:pad_token_id")
        return facts

    def recipe(self, ckpt: Checkpoint) -> Recipe | None:
        # SpiritLM's speech tokenizer (its 25 Hz HuBERT + the layer-11 linear quantizer L11_quantizer_500.pt,
        # spiritlm/speech_tokenizer/hubert/) ships with the weights, on request under Meta's licence: no
        # public address to pin.
        return Recipe("SpiritLM", None, None, "facebookresearch/spiritlm spiritlm/speech_tokenizer/hubert/__init__.py "
                      "(spiritlm_hubert), README.md (checkpoints on request)",
                      "SpiritLM's tokenizer files ship with its weights under licence, not publicly: pass --tokenizer "
                      "hubert:model=<HF conversion of mhubert_base_25hz.pt>,layer=11,"
                      "quantizer=<spiritlm>/speech_tokenizer/hubert_25hz/L11_quantizer_500.pt (docs/models.md)")
