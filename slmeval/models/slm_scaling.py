"""The `slm_scaling` adapter: native checkpoints of Cuervo & Marxer's suite (tiagoCuervo/slm_scaling).

Facts, from src/slm/model.py (TransformerLM.save_pretrained / from_pretrained) and
src/slm_data/backends.py (see docs/models.md):
- config.json `{"format_version": 1, "model_type": "slm", "model_args": {ModelArgs...}, ...}`;
  weights `model.safetensors` (or shards + index) named `tok_embeddings.weight`,
  `layers.N.attention.{wq,wk,wv,wo}.weight`, `layers.N.feed_forward.{w1,w2,w3}.weight`,
  `layers.N.{attention_norm,ffn_norm}.weight`, `norm.weight`; `output.weight` is tied to the
  embeddings and not stored;
- a Llama-style block: RMSNorm (eps = norm_eps), SwiGLU FFN w2(silu(w1 x) * w3 x) with hidden size
  `hidden_dim` or multiple_of * ceil(int(2 * 4 * dim / 3) / multiple_of), GQA via n_kv_heads, no biases,
  RoPE with theta 10000 over *interleaved* pairs (x[2i], x[2i+1]) of each head;
- units 0..K-1 are tokens 0..K-1, EOS = K (appended to every utterance, and the start token when
  scoring), PAD = K + 1, vocab = K + 2.

Loaded by conversion to `LlamaForCausalLM`: transformers' Llama rotates halves (x[i], x[i + d/2]), so
the rows of wq and wk are permuted within each head from interleaved to halves order. q·k is
unchanged by a permutation applied to both, so the converted model computes the same function.
"""
from __future__ import annotations

import torch

from slmeval.models.base import ADAPTERS, Adapter, Checkpoint, HFCore, LMCore, ModelError, Recipe, family_recipe
from slmeval.models.weights import load_into, read_state_dict

ROPE_THETA = 10000.0          # precompute_freqs_cis default; ModelArgs has no field for it
MODEL_ARGS = {"dim": 512, "n_layers": 6, "n_heads": 8, "n_kv_heads": None, "vocab_size": 32000,
              "prefix_vocab_size": None, "hidden_dim": None, "multiple_of": 256, "norm_eps": 1e-5,
              "block_size": 2048, "dropout": 0.0, "prefix_pad": None}   # ModelArgs defaults
SOURCE = "adapter:slm_scaling (slm_data: EOS = K, PAD = K + 1, vocab = K + 2)"


def ffn_hidden(dim: int, hidden_dim: int | None, multiple_of: int) -> int:
    if hidden_dim is not None:
        return hidden_dim
    hidden = int(2 * (4 * dim) / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def interleaved_to_halves(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder each head's rows from RoPE pairs (2i, 2i+1) to (i, i + head_dim/2)."""
    rows, cols = weight.shape
    head_dim = rows // n_heads
    return weight.reshape(n_heads, head_dim // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def model_args(ckpt: Checkpoint) -> dict:
    where = ckpt.directory / "config.json"
    if ckpt.config.get("format_version") != 1:
        raise ModelError(f"{where}: format_version {ckpt.config.get('format_version')!r}; the slm_scaling adapter "
                         "reads format 1 (TransformerLM.save_pretrained)")
    given = ckpt.config.get("model_args")
    if not isinstance(given, dict):
        raise ModelError(f"{where}: `model_args` (the ModelArgs of TransformerLM) is missing")
    unknown = set(given) - set(MODEL_ARGS)
    if unknown:
        raise ModelError(f"{where}: unknown model_args {sorted(unknown)}; known: {sorted(MODEL_ARGS)}")
    args = {**MODEL_ARGS, **given}
    for key, default in MODEL_ARGS.items():     # a hand-edited config: name the field, not a TypeError later
        value, numeric = args[key], (int,) if key != "norm_eps" and key != "dropout" else (int, float)
        if not (value is None and default is None) and (isinstance(value, bool) or not isinstance(value, numeric)):
            raise ModelError(f"{where}: model_args.{key} = {value!r}: expected "
                             f"{'a number' if len(numeric) == 2 else 'an integer'}"
                             + (" or null" if default is None else ""))
    if args["prefix_vocab_size"] is not None:
        raise ModelError(f"{where}: prefix_vocab_size={args['prefix_vocab_size']}: a prefix-conditioned model needs "
                         "prefix tokens with every sequence; only unconditional unit LMs can be scored")
    if args["dim"] % args["n_heads"] or args["n_heads"] % (args["n_kv_heads"] or args["n_heads"]):
        raise ModelError(f"{where}: dim {args['dim']}, n_heads {args['n_heads']}, n_kv_heads {args['n_kv_heads']} "
                         "do not divide")
    return args


@ADAPTERS.register("slm_scaling")
class SlmScalingAdapter(Adapter):
    """slm_scaling native checkpoints (Cuervo & Marxer): model_type slm, converted to Llama at load."""

    name = "slm_scaling"
    weights_hint = "model.safetensors (or model-*-of-*.safetensors + model.safetensors.index.json)"

    def detect(self, config: dict) -> str | None:
        if config.get("model_type") == "slm":
            return f"config.json model_type='slm', format_version={config.get('format_version')!r} (slm_scaling)"
        return None

    def load(self, ckpt: Checkpoint, args: dict[str, str], dtype: torch.dtype) -> LMCore:
        from transformers import AutoModelForCausalLM, LlamaConfig

        a = model_args(ckpt)
        n_kv = a["n_kv_heads"] or a["n_heads"]
        config = LlamaConfig(
            vocab_size=a["vocab_size"], hidden_size=a["dim"], intermediate_size=ffn_hidden(a["dim"], a["hidden_dim"],
                                                                                             a["multiple_of"]),
            num_hidden_layers=a["n_layers"], num_attention_heads=a["n_heads"], num_key_value_heads=n_kv,
            head_dim=a["dim"] // a["n_heads"], rms_norm_eps=a["norm_eps"], rope_theta=ROPE_THETA,
            max_position_embeddings=a["block_size"], tie_word_embeddings=True, attention_bias=False,
            mlp_bias=False, hidden_act="silu", bos_token_id=None, eos_token_id=a["vocab_size"] - 2,
            pad_token_id=a["vocab_size"] - 1)
        # Built in `dtype`, never `.to(dtype)`: the RoPE frequencies stay float32, as slm_scaling keeps its
        # freqs_cos / freqs_sin buffers (a bf16 inv_freq would move every position's angle).
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        state = to_llama(read_state_dict(ckpt.directory), a["n_layers"], a["n_heads"], n_kv)
        load_into(model, state, ckpt.directory, tied=True)
        return HFCore(model)

    def mapping_facts(self, ckpt: Checkpoint, core: LMCore) -> dict[str, tuple[object, str]]:
        vocab = model_args(ckpt)["vocab_size"]
        return {"offset": (0, SOURCE), "bos_id": (None, SOURCE + ": no BOS, EOS starts a sequence"),
                "eos_id": (vocab - 2, SOURCE), "pad_id": (vocab - 1, SOURCE),
                "n_units": (vocab - 2, "config.json:model_args.vocab_size - 2")}

    def recipe(self, ckpt: Checkpoint) -> Recipe | None:
        # DATA.md: slprl/mhubert-base-25hz at a pinned commit, layer 11, TWIST's k-means 500 (pinned sha256),
        # `--no-hubert-normalize`; src/slm_data/backends.py HubertKMeansTokenizer pads nothing.
        try:
            n_units = model_args(ckpt)["vocab_size"] - 2
        except ModelError:
            n_units = None
        return family_recipe("slm_scaling", "mhubert-25hz-l11-km500", "", n_units, "cuervo",
                             "tiagoCuervo/slm_scaling DATA.md, src/slm_data/backends.py (HubertKMeansTokenizer); "
                             "protocol: src/slm/evaluate.py (_evaluation_pair, summarize)")


def to_llama(state: dict[str, torch.Tensor], n_layers: int, n_heads: int, n_kv_heads: int) -> dict[str, torch.Tensor]:
    """slm_scaling tensor names → LlamaForCausalLM's, with the RoPE row permutation of wq / wk."""
    renames = {"attention.wv": "self_attn.v_proj", "attention.wo": "self_attn.o_proj",
               "feed_forward.w1": "mlp.gate_proj", "feed_forward.w3": "mlp.up_proj", "feed_forward.w2": "mlp.down_proj",
               "attention_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}
    out: dict[str, torch.Tensor] = {}
    left = dict(state)

    def take(name: str) -> torch.Tensor:
        if name not in left:
            raise ModelError(f"slm_scaling weights: tensor {name!r} is missing")
        return left.pop(name)

    out["model.embed_tokens.weight"] = take("tok_embeddings.weight")
    out["model.norm.weight"] = take("norm.weight")
    left.pop("output.weight", None)          # tied to tok_embeddings; stored only by older exports
    for i in range(n_layers):
        src, dst = f"layers.{i}.", f"model.layers.{i}."
        out[dst + "self_attn.q_proj.weight"] = interleaved_to_halves(take(src + "attention.wq.weight"), n_heads)
        out[dst + "self_attn.k_proj.weight"] = interleaved_to_halves(take(src + "attention.wk.weight"), n_kv_heads)
        for old, new in renames.items():
            out[dst + new + ".weight"] = take(src + old + ".weight")
    if left:
        raise ModelError(f"slm_scaling weights: unexpected tensors {sorted(left)[:4]} (more layers than n_layers?)")
    return out
