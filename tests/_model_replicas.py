"""Tiny replicas of published SLM checkpoint formats, saved the way each project's own code saves them,
plus independent float64 references of each project's forward pass and scoring rule.

- slamkit (slp-rl/slamkit slamkit/model/unit_lm.py): a PreTrainedModel whose config has
  `model_type = "speech_language_model"`, `is_composition = True`, the base LM config nested as
  `base_config`, `vocab_size` = K + 2; the base LM lives in `self.lm` (base_model_prefix "lm") and is
  resized to vocab_size. Saved with transformers' save_pretrained, exactly as the trainer does.
- slm_scaling (tiagoCuervo/slm_scaling src/slm/model.py TransformerLM.save_pretrained): config.json
  `{"format_version": 1, "model_type": "slm", "architectures": ["TransformerLM"], "model_args": {...},
  "torch_dtype": "float32", "tied_weights": [...]}` (indent 2 + newline), float32 safetensors with
  metadata {"format": "pt"}, the tied output.weight left out, shards `model-0000i-of-0000N.safetensors`
  + `model.safetensors.index.json` when split.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch

# -- shared test plumbing ---------------------------------------------------------------------------

def units_task(folder: Path, name: str, *, n_pairs: int, n_units: int, seed: int) -> list:
    """A pre-tokenised pairs task `name` in `folder` (units JSONL + its task file): tests of the model
    layer need no audio work."""
    from _data_helpers import make_units_jsonl

    pairs = make_units_jsonl(folder / "units.jsonl", n_pairs=n_pairs, n_units=n_units, seed=seed)
    (folder / f"{name}.yaml").write_text(f"name: {name}\nfamily: pairs\nsource: units_jsonl\n"
                                         f"path: {folder / 'units.jsonl'}\nversion: 1\n")
    return pairs


def squash(text: str) -> str:
    """Console output without its line wrapping (rich folds long paths anywhere): no whitespace at all."""
    return "".join(text.split())


# -- slamkit ---------------------------------------------------------------------------------------

_SLAMKIT_CLASSES: dict = {}


def slamkit_classes():
    """(config class, model class) mirroring slamkit's UnitLMConfig / UnitLM (built once per process).
    Named as slamkit names them: save_pretrained writes the class name into config.json `architectures`.
    The files these write were compared with slamkit's own UnitLM.save_pretrained output (same config keys
    and values but base_model_name, same tensor names / dtypes / shapes; docs/models.md, cross-check)."""
    if _SLAMKIT_CLASSES:
        return _SLAMKIT_CLASSES["cfg"], _SLAMKIT_CLASSES["model"]
    from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

    class UnitLMConfig(PretrainedConfig):
        model_type = "speech_language_model"
        is_composition = True

        def __init__(self, base_model_name="facebook/opt-125m", base_config=None, vocab_size=502, twist_init=True,
                     use_cache=True, pad_token_id=0, bos_token_id=1, eos_token_id=1, trust_remote_code=None,
                     use_safetensors=None, **kwargs):
            super().__init__(**kwargs)
            self.base_model_name = base_model_name
            self.vocab_size = vocab_size
            self.twist_init = twist_init
            self.use_cache = use_cache
            self.trust_remote_code = trust_remote_code
            self.use_safetensors = use_safetensors
            if isinstance(base_config, dict):            # reading config.json back (offline: no base download)
                base_config = dict(base_config)
                base_config.pop("dtype", None), base_config.pop("torch_dtype", None)
                base_config = AutoConfig.for_model(base_config.pop("model_type"), **base_config)
            self.base_config = base_config
            self.max_position_embeddings = getattr(base_config, "max_position_embeddings", None)
            self.tie_word_embeddings = base_config.tie_word_embeddings

    class UnitLM(PreTrainedModel):
        config_class = UnitLMConfig
        base_model_prefix = "lm"

        def __init__(self, config):
            super().__init__(config)
            self.lm = AutoModelForCausalLM.from_config(config.base_config)
            self.lm.resize_token_embeddings(config.vocab_size)
            self.post_init()

        def get_input_embeddings(self):
            return self.lm.get_input_embeddings()

        def get_output_embeddings(self):
            return self.lm.get_output_embeddings()

        def forward(self, input_ids=None, attention_mask=None, **kwargs):
            return self.lm(input_ids=input_ids, attention_mask=attention_mask)

    _SLAMKIT_CLASSES.update(cfg=UnitLMConfig, model=UnitLM)
    return UnitLMConfig, UnitLM


def base_config(kind: str, *, vocab_size: int = 1000):
    """A tiny text-LM config of the families Slam models start from; specials as slamkit's defaults."""
    from transformers import LlamaConfig, OPTConfig, Qwen2Config

    specials = dict(pad_token_id=0, bos_token_id=1, eos_token_id=1)
    if kind == "qwen2":   # Slam: Qwen2.5 (tied embeddings, q/k/v biases)
        return Qwen2Config(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                           tie_word_embeddings=True, **specials)
    if kind == "llama":
        return LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
                           tie_word_embeddings=False, **specials)
    if kind == "opt":     # slamkit's default base (facebook/opt-125m)
        return OPTConfig(vocab_size=vocab_size, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
                         max_position_embeddings=1024, word_embed_proj_dim=32, **specials)
    raise ValueError(kind)


def save_slamkit(path: Path, base: str = "qwen2", n_units: int = 500, seed: int = 0) -> Path:
    cfg_cls, model_cls = slamkit_classes()
    torch.manual_seed(seed)
    model = model_cls(cfg_cls(base_model_name=f"replica/{base}", base_config=base_config(base),
                              vocab_size=n_units + 2))
    with torch.no_grad():   # larger than init scale, so scores differ clearly between sequences
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    model.save_pretrained(path)
    return path


def slamkit_mean_logprob_f64(path: Path, units_seqs: list[list[int]]) -> list[float]:
    """slamkit's rule (UnitLM.log_likelihood + calc_nll, mean_nll=True): tokens <S> (u + 2)... <S>, the
    full forward's logits, cross-entropy at every position after the first, pad masked, mean; sign
    flipped to a log-likelihood. Float64, one sequence at a time, through the replica class itself."""
    _, model_cls = slamkit_classes()
    model = model_cls.from_pretrained(path, dtype=torch.float64).eval()
    out = []
    for units in units_seqs:
        tokens = torch.tensor([[1] + [u + 2 for u in units] + [1]])
        with torch.no_grad():
            logits = model(input_ids=tokens).logits[0]
        nll = torch.nn.functional.cross_entropy(logits[:-1], tokens[0, 1:], reduction="none")
        out.append(-float(nll.mean()))
    return out


# -- slm_scaling -----------------------------------------------------------------------------------

def slm_scaling_args(**overrides) -> dict:
    """asdict(ModelArgs) with every field, as TransformerLM.save_pretrained writes it."""
    args = {"dim": 32, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "vocab_size": 502, "prefix_vocab_size": None,
            "hidden_dim": None, "multiple_of": 16, "norm_eps": 1e-5, "block_size": 256, "dropout": 0.0,
            "prefix_pad": None}
    args.update(overrides)
    return args


def slm_scaling_hidden(dim: int, multiple_of: int) -> int:
    hidden = int(2 * (4 * dim) / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def save_slm_scaling(path: Path, args: dict | None = None, seed: int = 0, shards: int = 1) -> Path:
    from safetensors.torch import save_file

    a = args or slm_scaling_args()
    g = torch.Generator().manual_seed(seed)
    dim, hd = a["dim"], a["dim"] // a["n_heads"]
    n_kv = a["n_kv_heads"] or a["n_heads"]
    hidden = a["hidden_dim"] or slm_scaling_hidden(dim, a["multiple_of"])

    def rand(*shape, scale=0.3):
        return (torch.randn(*shape, generator=g) * scale).float()

    # State-dict order of TransformerLM: tok_embeddings, layers..., norm, output (tied → deduplicated away).
    state = {"tok_embeddings.weight": rand(a["vocab_size"], dim, scale=1.0)}
    for i in range(a["n_layers"]):
        p = f"layers.{i}."
        state[p + "attention.wq.weight"] = rand(a["n_heads"] * hd, dim)
        state[p + "attention.wk.weight"] = rand(n_kv * hd, dim)
        state[p + "attention.wv.weight"] = rand(n_kv * hd, dim)
        state[p + "attention.wo.weight"] = rand(dim, a["n_heads"] * hd)
        state[p + "feed_forward.w1.weight"] = rand(hidden, dim)
        state[p + "feed_forward.w2.weight"] = rand(dim, hidden)
        state[p + "feed_forward.w3.weight"] = rand(hidden, dim)
        state[p + "attention_norm.weight"] = 1.0 + rand(dim, scale=0.1)
        state[p + "ffn_norm.weight"] = 1.0 + rand(dim, scale=0.1)
    state["norm.weight"] = 1.0 + rand(dim, scale=0.1)
    path.mkdir(parents=True, exist_ok=True)
    config = {"format_version": 1, "model_type": "slm", "architectures": ["TransformerLM"], "model_args": a,
              "torch_dtype": "float32", "tied_weights": ["tok_embeddings.weight", "output.weight"]}
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    names = list(state)
    if shards == 1:
        save_file(state, path / "model.safetensors", metadata={"format": "pt"})
        return path
    per = -(-len(names) // shards)
    weight_map = {}
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: state[k] for k in names[s * per:(s + 1) * per]}
        save_file(part, path / name, metadata={"format": "pt"})
        weight_map.update({k: name for k in part})
    index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())},
             "weight_map": weight_map}
    (path / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return path


def _rms(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def _rope_interleaved(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [T, H, hd]: rotate the pairs (x[2i], x[2i+1]) by angle t * freq_i (slm_scaling's apply_rotary_emb)."""
    re, im = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = re * cos[:, None] - im * sin[:, None]
    out[..., 1::2] = re * sin[:, None] + im * cos[:, None]
    return out


def slm_scaling_logprobs_f64(path: Path, tokens: list[int]) -> torch.Tensor:
    """The slm_scaling architecture written out in float64 from the native tensors: log p(t_j | t_<j)."""
    from safetensors.torch import load_file

    cfg = json.loads((path / "config.json").read_text())
    a = cfg["model_args"]
    files = sorted(path.glob("model*.safetensors"))
    w = {k: v.double() for f in files for k, v in load_file(f).items()}
    dim, n_heads = a["dim"], a["n_heads"]
    n_kv, hd = a["n_kv_heads"] or n_heads, dim // n_heads
    T = len(tokens)
    freqs = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    angles = torch.outer(torch.arange(T, dtype=torch.float64), freqs)
    cos, sin = torch.cos(angles), torch.sin(angles)
    causal = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    emb = w["tok_embeddings.weight"]
    x = emb[torch.tensor(tokens)]
    for i in range(a["n_layers"]):
        p = f"layers.{i}."
        h = _rms(x, w[p + "attention_norm.weight"], a["norm_eps"])
        q = _rope_interleaved((h @ w[p + "attention.wq.weight"].T).view(T, n_heads, hd), cos, sin)
        k = _rope_interleaved((h @ w[p + "attention.wk.weight"].T).view(T, n_kv, hd), cos, sin)
        v = (h @ w[p + "attention.wv.weight"].T).view(T, n_kv, hd)
        k, v = k.repeat_interleave(n_heads // n_kv, dim=1), v.repeat_interleave(n_heads // n_kv, dim=1)
        att = torch.einsum("thd,shd->hts", q, k) / hd ** 0.5 + causal
        out = torch.einsum("hts,shd->thd", torch.softmax(att, -1), v).reshape(T, dim)
        x = x + out @ w[p + "attention.wo.weight"].T
        h = _rms(x, w[p + "ffn_norm.weight"], a["norm_eps"])
        gate = torch.nn.functional.silu(h @ w[p + "feed_forward.w1.weight"].T)
        x = x + (gate * (h @ w[p + "feed_forward.w3.weight"].T)) @ w[p + "feed_forward.w2.weight"].T
    logits = _rms(x, w["norm.weight"], a["norm_eps"]) @ emb.T
    logp = torch.log_softmax(logits, -1)
    return logp[:-1].gather(1, torch.tensor(tokens[1:])[:, None]).squeeze(1)


def slm_scaling_mean_nll_f64(path: Path, units: list[int]) -> float:
    """slm_scaling's evaluate.py rule: input [EOS] + units[:-1], targets = units (terminal EOS not
    scored, EOS = vocab - 2), mean NLL per target."""
    eos = json.loads((path / "config.json").read_text())["model_args"]["vocab_size"] - 2
    return -float(slm_scaling_logprobs_f64(path, [eos] + list(units)).mean())


def slm_scaling_decision(pos_nll: float, neg_nll: float, task: str) -> float:
    """summarize(): correct when the positive's NLL is lower; an exact tie is 0.5 on sBLIMP, else 0."""
    if pos_nll < neg_nll:
        return 1.0
    return 0.5 if task == "sblimp" and pos_nll == neg_nll else 0.0


# -- a Hugging Face Hub cache, built offline --------------------------------------------------------

def hub_cache(cache: Path, repo_id: str, folder: Path, commit: str, refs: tuple[str, ...] = ("main",)) -> Path:
    """Lay `folder` out as huggingface_hub stores a downloaded snapshot: models--org--name/blobs/<hash>
    (content), snapshots/<commit>/<file> (relative symlinks to the blobs), refs/<ref> (the commit)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        blob = repo / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.copyfile(f, blob)
        link = snap / f.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return snap
