"""A transformers model object already in memory → LoadedLM, for the Python API.

`slmeval.evaluate(model, ...)` takes a checkpoint folder or Hub id, and also a causal LM the caller
already holds (a training loop evaluating as it goes, a notebook) — as lm-eval's `HFLM(pretrained=...)`
accepts a model instance (lm_eval/models/huggingface.py). The unit mapping is resolved exactly as for
a folder (`slmeval.models.mapping`): `--model-args` / convention, then what `model.config` says
(TWIST's `offset`, the special-token ids), then what the tokenizer's K implies.

The caller's object is used as it is: never moved, cast or copied. Its device and dtype are read from
its parameters; a `device` / `dtype` argument that says otherwise is an error rather than a silent move.
It is switched to eval mode (dropout off) only while slmeval runs a batch and then put back, so a
training loop is left as it was. Its identity (results.json `model_sha256`) hashes its config and every
tensor of its state_dict, since there are no files to hash.
"""
from __future__ import annotations

import hashlib
import json

import torch

from slmeval.models.base import DTYPES, HFCore, LoadedLM, ModelError, as_bool, parse_kv
from slmeval.models.mapping import MAPPING_KEYS, check_specials, resolve_mapping
from slmeval.models.identity import model_sha256

# `adapter`, `revision`, `pretrained`, `trust_remote_code` choose or fetch files: meaningless for an object
INSTANCE_ARGS = frozenset({"force", "convention", "max_length", *MAPPING_KEYS})


class InstanceCore(HFCore):
    """HFCore over the caller's module: eval mode for the length of a call, the caller's mode after it."""

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        was_training = self.module.training
        self.module.eval()
        try:
            return super().hidden_states(input_ids, attention_mask)
        finally:
            self.module.train(was_training)


def is_model_object(model: object) -> bool:
    return isinstance(model, torch.nn.Module)


def _state_sha256(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}\t{data.dtype}\t{tuple(tensor.shape)}\n".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())   # raw bytes: bf16 has no numpy dtype
    return digest.hexdigest()


def _one(values: set, what: str, model: torch.nn.Module) -> object:
    if len(values) != 1:
        raise ModelError(f"the {type(model).__name__} object has parameters on several {what}s "
                         f"({', '.join(sorted(map(str, values)))}); slmeval scores a model on one {what}")
    return next(iter(values))


def wrap_model(model: torch.nn.Module, *, model_args: dict[str, str] | str | None = None, device: str = "cpu",
               dtype: str = "float32", n_units: int | None = None) -> LoadedLM:
    """A transformers causal LM object (`PreTrainedModel` with an LM head) → LoadedLM, as `load_lm` does
    for a folder. Errors name what is wrong with the object and what to pass."""
    kind = type(model).__name__
    config = getattr(model, "config", None)
    if not hasattr(config, "to_dict") or not callable(getattr(model, "get_output_embeddings", None)) \
            or not getattr(model, "base_model_prefix", None):
        raise ModelError(f"model: a {kind} object is not a transformers model (expected a PreTrainedModel such as "
                         "AutoModelForCausalLM.from_pretrained(...) returns), a checkpoint folder or a Hub id")
    if model.get_output_embeddings() is None:
        raise ModelError(f"model: the {kind} object has no LM head (get_output_embeddings() is None); pass the "
                         "causal-LM class (AutoModelForCausalLM), not the bare backbone")
    args = parse_kv(model_args) if isinstance(model_args, str) or model_args is None else dict(model_args)
    args = {k: str(v) for k, v in args.items()}
    unknown = set(args) - INSTANCE_ARGS
    if unknown:
        raise ModelError(f"--model-args: {sorted(unknown)} do not apply to a model object (they choose or fetch "
                         f"files); keys that do: {sorted(INSTANCE_ARGS)}")
    if dtype not in DTYPES:
        raise ModelError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    params = list(model.parameters())
    if not params:
        raise ModelError(f"model: the {kind} object has no parameters")
    on = _one({p.device for p in params}, "device", model)
    held = _one({p.dtype for p in params}, "dtype", model)
    if on != torch.device(device) and not (on.type == "cuda" and device == "cuda" and on.index in (None, 0)):
        raise ModelError(f"the model object is on {on} but device={device!r}: slmeval does not move a model it did "
                         f"not load; pass device={str(on)!r} (or move the model first)")
    if held != DTYPES[dtype]:
        raise ModelError(f"the model object holds {str(held).removeprefix('torch.')} weights but dtype={dtype!r}: "
                         f"slmeval does not cast a model it did not load; pass dtype="
                         f"{str(held).removeprefix('torch.')!r} (or cast the model first)")
    core = InstanceCore(model)
    vocab = int(core.head()[0].shape[0])
    config_dict = config.to_dict()
    force = as_bool("force", args.get("force"))
    mapping = resolve_mapping(config_dict, args, vocab_size=vocab, n_units=n_units, force=force)
    check_specials(mapping, vocab)
    max_length = args.get("max_length") or core.max_length
    files = {"config (in memory)": hashlib.sha256(json.dumps(config_dict, sort_keys=True, default=str).encode())
             .hexdigest(), "state_dict (in memory)": _state_sha256(model)}
    origin = getattr(config, "name_or_path", "") or ""
    lm = LoadedLM(core=core, mapping=mapping, path=f"in-memory {kind}" + (f" (from {origin})" if origin else ""),
                  device=on, dtype=held, vocab_size=vocab, max_length=int(max_length) if max_length else None,
                  sha256=model_sha256(files), model_args=args, adapter="hf",
                  adapter_reason=f"a {kind} object passed to slmeval.evaluate (in memory)", files=files)
    if n_units is not None:
        lm.check_units(n_units)
    return lm
