"""What every model adapter produces: a loaded LM (final hidden states + LM head) and its unit mapping.

An adapter turns one checkpoint format (HF causal LM, slamkit's SpeechLM, slm_scaling's native
checkpoint, ...) into an `LMCore`: final hidden states for a batch of token ids, plus the LM head
(weight, bias, softcap), so the scorer gathers only the target log-probs and never builds `[T, V]`
logits. The unit → token mapping says which token id each speech unit is, which tokens start a
sequence, and where every one of those facts came from.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Sequence

import torch

from slmeval.io import parse_kv as _parse_kv
from slmeval.plugins import Registry

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class ModelError(ValueError):
    """A checkpoint that cannot be loaded as asked: one message naming the file/field and what to do."""


def parse_kv(text: str | None, what: str = "--model-args") -> dict[str, str]:
    """'a=1,b=x' → {'a': '1', 'b': 'x'} with an error that names the offending piece."""
    return _parse_kv(text, what, error=ModelError)


def as_bool(key: str, value: str | bool | None) -> bool:
    if isinstance(value, bool) or value is None:
        return bool(value)
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no", ""):
        return False
    raise ModelError(f"--model-args {key}={value!r}: expected true or false")


# -- the unit → token mapping -----------------------------------------------------------------------

@dataclass
class UnitMapping:
    """Which token id each unit is, and the special tokens around a sequence.

    Units map either by an `offset` (token = unit + offset: TWIST, slamkit, slm_scaling) or by an
    explicit table `unit_ids` (unit k → unit_ids[k]: SpiritLM looks `[Hu<k>]` up in its tokenizer);
    exactly one of the two is set. `prefix_ids` are tokens every sequence carries between the
    protocol's start token and the first unit (SpiritLM's `[Speech]`); they are context, never scored.
    `sources` says, for every field, where its value came from ("model_args", "config.json",
    "adapter:slamkit", "inferred:slamkit (...)", ...).
    """
    offset: int | None
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    unit_ids: tuple[int, ...] | None = None
    prefix_ids: tuple[int, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.offset is None) == (self.unit_ids is None):
            raise ModelError("a unit mapping needs exactly one of offset and unit_ids")
        if self.unit_ids is not None:
            self.unit_ids = tuple(int(t) for t in self.unit_ids)
        self.prefix_ids = tuple(int(t) for t in self.prefix_ids)

    def capacity(self, vocab_size: int) -> int:
        """How many units (0 .. n-1) this mapping can express inside a vocabulary of `vocab_size`."""
        if self.unit_ids is not None:
            return len(self.unit_ids)
        return max(vocab_size - int(self.offset), 0)

    def specials_among_units(self, n_units: int) -> list[str]:
        """The special tokens (bos / eos / pad) that units 0 .. n_units-1 are mapped onto: `['eos_id=2 (unit
        0)', ...]`. A unit scored as the EOS token is scored as 'the sequence ends here' — a wrong number."""
        def unit_of(token: int) -> int | None:
            if self.unit_ids is not None:
                return self.unit_ids.index(token) if token in self.unit_ids[:n_units] else None
            k = token - int(self.offset)
            return k if 0 <= k < n_units else None

        hits = []
        for key in ("bos_id", "eos_id", "pad_id"):
            value = getattr(self, key)
            unit = None if value is None else unit_of(value)
            if unit is not None:
                hits.append(f"{key}={value} (unit {unit})")
        return hits

    def unit_tokens(self, units: Sequence[int]) -> list[int]:
        """Token ids of `units` (range-checked by the caller against `capacity`)."""
        if self.unit_ids is not None:
            table = self.unit_ids
            return [table[int(u)] for u in units]
        return [int(u) + int(self.offset) for u in units]

    def start_ids(self, start_token: str) -> list[int]:
        """The tokens a sequence begins with: the protocol's start token (bos | eos | none) + prefix_ids."""
        if start_token == "none":
            return list(self.prefix_ids)
        value = self.bos_id if start_token == "bos" else self.eos_id
        if value is None:
            raise ModelError(f"the protocol starts sequences with {start_token.upper()} but the model has no "
                             f"{start_token}_id; pass --model-args {start_token}_id=N")
        return [value, *self.prefix_ids]

    def to_dict(self) -> dict:
        return {"offset": self.offset, "bos_id": self.bos_id, "eos_id": self.eos_id, "pad_id": self.pad_id,
                "unit_ids": list(self.unit_ids) if self.unit_ids is not None else None,
                "prefix_ids": list(self.prefix_ids), "sources": dict(self.sources)}


# -- the loaded network ------------------------------------------------------------------------------

class LMCore(ABC):
    """A network seen the way the scorer needs it: final hidden states + the LM head."""

    module: torch.nn.Module          # moved to the device, switched to eval, counted by `slmeval loss`

    @abstractmethod
    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Final hidden states [B, L, d] (after the final norm), right-padded batch."""

    @abstractmethod
    def head(self) -> tuple[torch.Tensor, torch.Tensor | None, float | None]:
        """(weight [V, d], bias [V] or None, final-logit softcap or None)."""

    @property
    def max_length(self) -> int | None:
        return None


class HFCore(LMCore):
    """Any transformers causal LM: the backbone (no LM head call, so no [B, L, V] logits) + its head."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.module = model

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        backbone = getattr(self.module, self.module.base_model_prefix)
        return backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def head(self) -> tuple[torch.Tensor, torch.Tensor | None, float | None]:
        out = self.module.get_output_embeddings()
        softcap = getattr(self.module.config, "final_logit_softcapping", None)
        return out.weight, getattr(out, "bias", None), softcap

    @property
    def max_length(self) -> int | None:
        value = getattr(self.module.config, "max_position_embeddings", None)
        return int(value) if value else None


@dataclass
class Checkpoint:
    """A checkpoint on local disk, as an adapter sees it (Hub ids are already downloaded/resolved)."""
    directory: Path
    config: dict                   # config.json, parsed
    reference: str                 # what the user passed (a path or org/name[@rev])
    hub: dict | None = None        # {"repo_id", "revision", "commit_sha"} for Hub ids


@dataclass(frozen=True)
class Recipe:
    """What a checkpoint's family was trained and evaluated with, where its format makes that knowable.

    `tokenizer`: a tokenizer spec (a preset name, with overrides: `mhubert-25hz-l11-km500:input_pad=40`),
    or None with `note` saying why it cannot be known; `protocol`: the family's own scoring protocol (used
    only with `--protocol recipe`; the default protocol is the same for every model), or None."""
    family: str
    tokenizer: str | None
    protocol: str | None
    source: str                    # where the family's choices are written (repo + path)
    note: str = ""


def family_recipe(family: str, preset: str, overrides: str, n_units: int | None, protocol: str | None,
                  source: str) -> Recipe:
    """The family's tokenizer preset, if the checkpoint's K is the preset's (a checkpoint trained on other
    units says nothing about which tokenizer made them)."""
    from slmeval.units.presets import get_preset

    k = get_preset(preset).n_units
    if n_units is not None and n_units != k:
        return Recipe(family, None, protocol, source, f"this checkpoint has K={n_units} units; the {family} "
                      f"tokenizer ({preset}) has {k}, so its tokenizer is not known")
    return Recipe(family, preset + (f":{overrides}" if overrides else ""), protocol, source)


class Adapter(ABC):
    """One checkpoint format. Register with `@ADAPTERS.register("name")` (or the `slmeval.models`
    entry-point group); the registry holds the class, `load_lm` instantiates it."""

    name: ClassVar[str] = ""
    fallback: ClassVar[bool] = False          # claims configs only when no specific adapter does (hf)
    extra_args: ClassVar[frozenset[str]] = frozenset()   # --model-args keys this adapter adds
    weights_hint: ClassVar[str] = "model.safetensors, sharded model-*.safetensors + index, or pytorch_model.bin"

    @abstractmethod
    def detect(self, config: dict) -> str | None:
        """Why this adapter reads a checkpoint with this config.json (e.g. "model_type=slm"), or None."""

    def detect_files(self, directory: Path, config: dict) -> str | None:
        """Why this adapter reads the checkpoint, judged from the files beside config.json (its tokenizer,
        say), or None. Asked only when `detect(config)` says nothing: formats whose config.json is a
        plain architecture config (SpiritLM's is Llama's) are told apart by their other files."""
        return None

    @abstractmethod
    def load(self, ckpt: Checkpoint, args: dict[str, str], dtype: torch.dtype) -> LMCore:
        """Build the network on CPU in `dtype`; raise ModelError naming the file on bad input."""

    def mapping_facts(self, ckpt: Checkpoint, core: LMCore) -> dict[str, tuple[object, str]]:
        """What the checkpoint itself says about the mapping: field → (value, source).

        Fields: offset, bos_id, eos_id, pad_id, unit_ids, prefix_ids, and n_units when the format pins
        K (then a tokenizer with another K is an error). A --model-args value that contradicts one of
        these is an error unless force=true.
        """
        return {}

    def recipe(self, ckpt: Checkpoint) -> Recipe | None:
        """The family's tokenizer preset and protocol, judged from config.json alone (before loading), or
        None when the format says nothing about them. docs/models.md lists each family's with sources."""
        return None

    def weight_files(self, ckpt: Checkpoint) -> list[Path]:
        """The files holding the weights (hashed into the model identity; none → an error). Default:
        `model.safetensors`, a sharded set + its index, or `pytorch_model*.bin` — never optimizer or
        training-state files a trainer leaves beside them."""
        from slmeval.models.weights import weight_files

        return weight_files(ckpt.directory)


ADAPTERS: Registry[type[Adapter]] = Registry(
    "model adapter", group="slmeval.models", package="slmeval.models")


@dataclass
class LoadedLM:
    core: LMCore
    mapping: UnitMapping
    path: str                      # what the user passed: a directory or a Hub id
    device: torch.device
    dtype: torch.dtype
    vocab_size: int
    max_length: int | None
    sha256: str                    # model identity: config + weights + tokenizer files
    model_args: dict[str, str]
    adapter: str = "hf"
    adapter_reason: str = ""
    files: dict[str, str] = field(default_factory=dict)    # file name → sha256 (what `sha256` covers)
    hub: dict | None = None

    @property
    def model(self) -> torch.nn.Module:
        return self.core.module

    @property
    def head(self) -> tuple[torch.Tensor, torch.Tensor | None, float | None]:
        """(weight [V, d], bias or None, final-logit softcap or None) of the LM head."""
        return self.core.head()

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Final hidden states [B, L, d] — the backbone only, so no [B, L, V] logits are made."""
        return self.core.hidden_states(input_ids, attention_mask)

    def check_units(self, n_units: int, what: str = "the tokenizer") -> None:
        """K units from `what` must all map inside the vocabulary — checked before any audio work."""
        room = self.mapping.capacity(self.vocab_size)
        if n_units > room:
            how = (f"units 0..{n_units - 1} + offset {self.mapping.offset} reach token "
                   f"{n_units - 1 + int(self.mapping.offset)}" if self.mapping.offset is not None
                   else f"the model's unit table holds {room} units")
            raise ModelError(f"{what} has K={n_units} units but the model ({self.path}) has room for {room}: "
                             f"{how}, vocabulary size {self.vocab_size}. Wrong tokenizer, or wrong offset "
                             f"(from {self.mapping.sources.get('offset', self.mapping.sources.get('unit_ids'))})?")
        clash = self.mapping.specials_among_units(n_units)
        if not clash:
            return
        where = (f"offset {self.mapping.offset} (from {self.mapping.sources.get('offset')})"
                 if self.mapping.offset is not None else f"the unit table (from {self.mapping.sources.get('unit_ids')})")
        if not as_bool("force", self.model_args.get("force")):
            raise ModelError(f"{what}'s units 0..{n_units - 1} land on special token(s) {', '.join(clash)} of the model "
                             f"({self.path}) under {where}: those units would be scored as BOS / EOS / padding. Wrong "
                             "offset or special ids? Pass the right --model-args offset=N, or force=true to score "
                             "anyway (recorded in results.json)")
        self.mapping.sources["units_on_specials"] = f"forced (force=true): {', '.join(clash)} are unit tokens"

    def describe(self) -> dict:
        return {"model": self.path, "model_args": self.model_args, "adapter": self.adapter,
                "adapter_reason": self.adapter_reason, "unit_mapping": self.mapping.to_dict(),
                "dtype": str(self.dtype).removeprefix("torch."), "device": str(self.device),
                "vocab_size": self.vocab_size, "max_length": self.max_length, "model_sha256": self.sha256,
                "model_files": self.files, "hub": self.hub}
