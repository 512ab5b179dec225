"""Shared fixtures: tiny random causal LMs in two unit conventions (saved like real checkpoints)."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch

N_UNITS = 16   # K of the test tokenizers

# Tests send traffic to loopback addresses only (the stand-in Hub, torchrun's store). Code that would reach a
# real host (a Hub download, an archive address) fails as it would without network, in this process at the name
# lookup; subprocesses inherit a Hub endpoint on a closed loopback port. The stand-in Hub fixture sets its own.
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")
_real_getaddrinfo = socket.getaddrinfo


def _loopback_only(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else ("" if host is None else str(host))
    if name in ("", "localhost", "::1", "0.0.0.0") or name.startswith("127."):
        return _real_getaddrinfo(host, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, f"tests reach loopback addresses only, not {name!r}")


socket.getaddrinfo = _loopback_only


def _save(model: torch.nn.Module, path: Path, extra_config: dict) -> Path:
    model.save_pretrained(path)
    cfg_file = path / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg.update(extra_config)
    cfg_file.write_text(json.dumps(cfg, indent=2))
    return path


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """TWIST-style checkpoint: config.json carries `offset`; pad 0, BOS 1, EOS 2, units from token 3."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=N_UNITS + 3, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    return _save(LlamaForCausalLM(cfg), tmp_path_factory.mktemp("llama"), {"offset": 3})


@pytest.fixture(scope="session")
def tiny_opt_dir(tmp_path_factory) -> Path:
    """slamkit-convention checkpoint (offset 2, BOS = EOS = 1, pad 0) in a second architecture (OPT,
    learned positions, tied embeddings); its config says nothing about units."""
    from transformers import OPTConfig, OPTForCausalLM

    torch.manual_seed(1)
    cfg = OPTConfig(vocab_size=N_UNITS + 2, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
                    max_position_embeddings=512, word_embed_proj_dim=32, pad_token_id=0, bos_token_id=1,
                    eos_token_id=1)
    return _save(OPTForCausalLM(cfg), tmp_path_factory.mktemp("opt"), {})


def naive_logprobs(model_dir: Path, tokens: list[int]) -> torch.Tensor:
    """Independent reference: float64 model, one sequence per forward, full log_softmax, gather."""
    from transformers import AutoModelForCausalLM

    key = str(model_dir)
    if key not in _NAIVE_MODELS:
        _NAIVE_MODELS[key] = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64).eval()
    with torch.no_grad():
        logits = _NAIVE_MODELS[key](torch.tensor([tokens])).logits[0]
    logp = torch.log_softmax(logits, dim=-1)
    return logp[:-1].gather(1, torch.tensor(tokens[1:]).unsqueeze(1)).squeeze(1)


_NAIVE_MODELS: dict[str, torch.nn.Module] = {}
