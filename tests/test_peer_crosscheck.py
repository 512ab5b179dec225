"""Defects found by running the peers' own code against slmeval (docs/models.md, "Cross-checked by running
the peers' code"), each pinned here with a reference written in the test (no peer code is imported).

1. bf16 and RoPE: slamkit loads a Slam checkpoint with `UnitLM.from_pretrained(torch_dtype=bfloat16)`, which
   keeps the rotary `inv_freq` buffer in float32; slmeval's slamkit / slm_scaling adapters cast the whole
   model with `.to(dtype)`, rounding it to bfloat16 and moving every position's angle — scores one bf16
   ulp off on part of the sequences.
2. Exact ties: a pair whose two sides are the same sequence must tie. slmeval sorts sequences by length
   and batches them, so the two copies could sit in batches of different padded widths and come out a
   float-rounding apart (~1e-7 in float32, ~1e-4 in bf16): a tie turned into a win or a loss.
Also pinned: a slamkit checkpoint saved in bfloat16 (as Slam's bf16 training saves it, checked against
slamkit's own save) reads exactly at --dtype float32.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from _model_replicas import save_slamkit, save_slm_scaling, slamkit_classes
from slmeval.models import load_lm
from slmeval.scoring import get_protocol, score_sequences


@pytest.fixture(scope="module")
def slam_qwen2(tmp_path_factory) -> Path:
    return save_slamkit(tmp_path_factory.mktemp("slam") / "qwen2", "qwen2", n_units=500, seed=5)


def _slamkit_bf16_mean_loglik(model: torch.nn.Module, units: list[int]) -> float:
    """slamkit's rule at batch 1 with its model in bfloat16 (UnitLM.log_likelihood + calc_nll): <S> u+2 <S>,
    bf16 logits of the full forward, per-token cross-entropy, sum, ÷ count (exact in bf16 below 256)."""
    tokens = torch.tensor([[1, *(u + 2 for u in units), 1]])
    with torch.no_grad():
        logits = model(input_ids=tokens).logits[0, :-1]
    assert logits.dtype == torch.bfloat16
    losses = torch.nn.functional.cross_entropy(logits, tokens[0, 1:], reduction="none")
    return -float(losses.sum() / torch.tensor(losses.numel()).to(torch.bfloat16))


def test_slamkit_rope_checkpoint_in_bf16_is_bit_equal_to_slamkit(slam_qwen2):
    _, model_cls = slamkit_classes()
    # How slamkit loads it for a bf16 evaluation: from_pretrained with the dtype (buffers as transformers makes them).
    reference = model_cls.from_pretrained(slam_qwen2, dtype=torch.bfloat16).eval()
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 500, size=int(n)).tolist() for n in rng.integers(100, 250, size=24)]
    ref = [_slamkit_bf16_mean_loglik(reference, s) for s in seqs]
    lm = load_lm(slam_qwen2, dtype="bfloat16")
    exact = get_protocol("slamkit", {"logprob_dtype": "bfloat16"})
    ours = [s.score("mean") for s in score_sequences(lm, seqs, exact, names=["s"] * len(seqs), batch_size=1,
                                                     backend="torch", progress=False)]
    assert ours == ref


@pytest.mark.parametrize("fmt", ["slamkit", "slm_scaling"])
def test_bf16_load_keeps_rope_frequencies_float32(fmt, slam_qwen2, tmp_path):
    """RoPE inverse frequencies 1 / theta^(2i/d), theta 10000, computed here in float32: what transformers'
    from_pretrained(dtype=bfloat16) keeps and what slm_scaling's precompute_freqs_cis uses."""
    path = slam_qwen2 if fmt == "slamkit" else save_slm_scaling(tmp_path / "m")
    lm = load_lm(path, dtype="bfloat16")
    rotary = lm.model.model.rotary_emb
    head_dim = lm.model.config.hidden_size // lm.model.config.num_attention_heads
    expected = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    assert rotary.inv_freq.dtype == torch.float32
    torch.testing.assert_close(rotary.inv_freq, expected, rtol=1e-6, atol=0)
    assert lm.model.get_input_embeddings().weight.dtype == torch.bfloat16


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_identical_sequences_score_identically_whatever_the_batching(dtype, tiny_llama_dir):
    """Sorted by length, the two copies of `same` fall at positions 7 and 8: one in the first batch of 8
    (padded to 60 tokens), one in the second (unpadded). They must still get one score."""
    rng = np.random.default_rng(1)
    same = rng.integers(0, 16, size=20).tolist()
    longer = [rng.integers(0, 16, size=60).tolist() for _ in range(7)]
    shorter = [rng.integers(0, 16, size=10).tolist() for _ in range(5)]
    seqs = [same, *longer, same, *shorter]
    lm = load_lm(tiny_llama_dir, dtype=dtype)
    proto = get_protocol("slmeval", {"logprob_dtype": dtype})
    scores = score_sequences(lm, seqs, proto, names=[f"s{i}" for i in range(len(seqs))], batch_size=8,
                             backend="torch", progress=False)
    assert (scores[0].logprob, scores[0].n_scored) == (scores[8].logprob, scores[8].n_scored)
    alone = score_sequences(lm, [same], proto, names=["alone"], batch_size=1, backend="torch", progress=False)[0]
    assert abs(alone.logprob - scores[0].logprob) <= (1e-4 if dtype == "float32" else 0.25)


def test_pairs_with_identical_sides_tie_under_every_tie_rule(tiny_llama_dir, tmp_path):
    """The run level: identical sides score as a tie (as slmeval warns they do), so the tie rule decides:
    0.5 under the default, 0 under cuervo on a `pairs` task (slm_scaling's summarize for StoryCloze)."""
    import slmeval

    rng = np.random.default_rng(2)
    lines = []
    for i in range(12):
        pos = rng.integers(0, 16, size=int(rng.integers(5, 40))).tolist()
        neg = list(pos) if i % 3 == 0 else rng.integers(0, 16, size=int(rng.integers(5, 40))).tolist()
        lines.append(json.dumps({"id": i, "positive": pos, "negative": neg}))
    (tmp_path / "units.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "tasks.yaml").write_text("- {name: t_same, family: pairs, source: units_jsonl, path: ./units.jsonl}\n")
    for preset, credit in (("slmeval", 0.5), ("cuervo_bos", 0.0)):
        args = "start_token=bos" if preset == "cuervo_bos" else None    # tiny_llama has a BOS; cuervo's tie rule
        out = tmp_path / preset
        slmeval.evaluate(tiny_llama_dir, ["t_same"], include_path=[tmp_path], batch_size=3,
                         protocol="cuervo" if preset == "cuervo_bos" else "slmeval", protocol_args=args,
                         output=out, progress=False)
        rows = [json.loads(x) for x in (out / "samples_t_same.jsonl").read_text().splitlines()]
        ties = [r for r in rows if int(r["id"]) % 3 == 0]
        assert len(ties) == 4
        assert all(r["positive_score"] == r["negative_score"] and r["correct"] == credit for r in ties)


def test_slamkit_checkpoint_saved_in_bf16_reads_exactly(tmp_path):
    """Slam trains in bfloat16 (config/model/slam.yaml): its files hold BF16 tensors and config dtype bfloat16.
    Read at --dtype float32, every weight is its bf16 value exactly: scores match the float64 reference of
    the same (bf16-valued) weights."""
    from _model_replicas import slamkit_mean_logprob_f64

    src = save_slamkit(tmp_path / "f32", "qwen2", n_units=500, seed=9)
    _, model_cls = slamkit_classes()
    model_cls.from_pretrained(src, dtype=torch.bfloat16).save_pretrained(tmp_path / "bf16")
    header = (tmp_path / "bf16" / "model.safetensors").read_bytes()
    assert b'"BF16"' in header[:20000] and b'"F32"' not in header[:20000]
    rng = np.random.default_rng(3)
    seqs = [rng.integers(0, 500, size=int(n)).tolist() for n in (5, 30, 80)]
    lm = load_lm(tmp_path / "bf16", dtype="float32")
    assert lm.model.get_input_embeddings().weight.dtype == torch.float32
    ours = [s.score("mean") for s in score_sequences(lm, seqs, get_protocol("slamkit"), names=["s"] * 3,
                                                     backend="torch", progress=False)]
    assert ours == pytest.approx(slamkit_mean_logprob_f64(tmp_path / "bf16", seqs), abs=1e-5)
