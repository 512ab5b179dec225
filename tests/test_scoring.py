"""Scoring layer against an independent float64 reference; protocols and unit mappings."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import N_UNITS, naive_logprobs
from slmeval.models import ModelError, load_lm, resolve_mapping
from slmeval.task_loader.registry import all_tasks
from slmeval.scoring import (PRESETS, ScoringError, build_tokens, get_protocol, score_sequences, sequence_logprobs,
                             torch_target_logprobs)
from slmeval.scoring.protocol import ProtocolError


@pytest.fixture(scope="module")
def llama(tiny_llama_dir):
    return load_lm(tiny_llama_dir)


@pytest.fixture(scope="module")
def opt(tiny_opt_dir):
    return load_lm(tiny_opt_dir, model_args="convention=slamkit")


def _random_units(n_seqs: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, N_UNITS, size=int(rng.integers(1, 40))).tolist() for _ in range(n_seqs)]


@pytest.mark.parametrize("which", ["llama", "opt"])
def test_sequence_logprobs_equal_naive_float64_at_every_batch_size(which, request):
    lm = request.getfixturevalue(which)
    model_dir = request.getfixturevalue(f"tiny_{which}_dir")
    seqs = [build_tokens(u, lm, PRESETS["slamkit"]) for u in _random_units(11, seed=3)]
    by_batch = {bs: sequence_logprobs(lm, seqs, batch_size=bs, backend="torch", progress=False) for bs in (1, 4, 11)}
    # results come to the host once per group of batches: groups of ~1 batch give the same arrays
    by_batch["4, groups of 7 tokens"] = sequence_logprobs(lm, seqs, batch_size=4, backend="torch", progress=False,
                                                          group_tokens=7)
    for i, tokens in enumerate(seqs):
        ref = naive_logprobs(model_dir, tokens).numpy()
        for bs, out in by_batch.items():
            assert out[i].shape == ref.shape
            np.testing.assert_allclose(out[i], ref, atol=1e-5, err_msg=f"{which} batch={bs} seq={i}")
        assert np.abs(by_batch[1][i] - by_batch[11][i]).max() <= 1e-5


def test_torch_head_is_chunked_and_exact_with_bias_and_softcap():
    g = torch.Generator().manual_seed(0)
    hidden, weight = torch.randn(37, 13, generator=g), torch.randn(101, 13, generator=g)
    bias, targets = torch.randn(101, generator=g), torch.randint(0, 101, (37,), generator=g)
    targets[[3, 20]] = -100
    for softcap in (None, 5.0):
        logits = hidden.double() @ weight.double().T + bias.double()
        if softcap:
            logits = softcap * torch.tanh(logits / softcap)
        ref = torch.log_softmax(logits, -1).gather(1, targets.clamp(min=0)[:, None]).squeeze(1)
        ref[[3, 20]] = 0.0
        # 4 rows per chunk: the [T, V] matrix is never built whole.
        out = torch_target_logprobs(hidden, weight, targets, bias, softcap=softcap, max_chunk_bytes=4 * 4 * 101)
        assert out.dtype == torch.float32
        assert (out.double() - ref).abs().max() <= 1e-5


def test_presets_change_exactly_what_they_say(llama, tiny_llama_dir):
    units = [5, 0, 7, 7, 3]
    shifted = [u + 3 for u in units]                      # config.json offset 3
    assert build_tokens(units, llama, PRESETS["slmeval"]) == [1] + shifted
    assert build_tokens(units, llama, PRESETS["slamkit"]) == [1] + shifted + [2]
    assert build_tokens(units, llama, PRESETS["cuervo"]) == [2] + shifted
    assert build_tokens(units, llama, get_protocol("slmeval", {"start_token": "none"})) == shifted

    names = ["a"]
    base = score_sequences(llama, [units], PRESETS["slmeval"], names=names, progress=False)[0]
    slam = score_sequences(llama, [units], PRESETS["slamkit"], names=names, progress=False)[0]
    assert (base.n_scored, slam.n_scored) == (5, 6)       # slamkit adds exactly one scored EOS
    eos_lp = float(naive_logprobs(tiny_llama_dir, [1] + shifted + [2])[-1])
    assert slam.logprob == pytest.approx(base.logprob + eos_lp, abs=1e-5)
    summed = get_protocol("slmeval", {"score": "sum"})
    assert base.score(summed.score) == pytest.approx(base.logprob)
    assert base.score("mean") == pytest.approx(base.logprob / 5)
    # which metric a task reports under a preset is the task file's, not the protocol's
    sblimp = all_tasks()["sblimp"]
    assert (sblimp.headline_for("cuervo"), sblimp.headline_for("cuervo+custom"), sblimp.headline_for("slmeval")) == \
        ("acc_macro", "acc_macro", "acc")


def test_unit_mapping_resolution_order_and_sources(tiny_llama_dir):
    config = json.loads((tiny_llama_dir / "config.json").read_text())
    m = resolve_mapping(config, {})
    assert (m.offset, m.bos_id, m.eos_id, m.pad_id) == (3, 1, 2, 0)
    assert m.sources == {"offset": "config.json:offset", "bos_id": "config.json:bos_token_id",
                         "eos_id": "config.json:eos_token_id", "pad_id": "config.json:pad_token_id"}
    # --model-args beat a convention, which beats the checkpoint — but contradicting the checkpoint needs force.
    with pytest.raises(ModelError, match=r"contradict the checkpoint: offset=0 \(from convention:slm_scaling\) but the checkpoint "
                                        r"says offset=3 \(config.json:offset\); bos_id=None .*; eos_id=500"):
        resolve_mapping(config, {"convention": "slm_scaling"})
    m = resolve_mapping(config, {"convention": "slm_scaling", "pad_id": "7"}, force=True)
    assert (m.offset, m.bos_id, m.eos_id, m.pad_id) == (0, None, 500, 7)
    assert m.sources["pad_id"] == "model_args (forced over config.json:pad_token_id=0)"
    assert m.sources["eos_id"] == "convention:slm_scaling (forced over config.json:eos_token_id=2)"
    assert resolve_mapping(config, {"offset": "3"}).sources["offset"] == "model_args"   # agreeing is fine
    with pytest.raises(ModelError, match="unknown convention|convention='nope'"):
        resolve_mapping(config, {"convention": "nope"})
    with pytest.raises(ModelError, match="outside the vocabulary"):    # EOS 500 in a 19-token vocabulary
        load_lm(tiny_llama_dir, model_args="convention=slm_scaling,force=true")
    with pytest.raises(ModelError, match="unknown key"):
        load_lm(tiny_llama_dir, model_args="ofset=2")


def test_scoring_errors_name_the_item(llama, opt, tiny_llama_dir):
    with pytest.raises(ScoringError, match="item7.*outside the model vocabulary"):
        build_tokens([N_UNITS], llama, PRESETS["slmeval"], name="item7")
    with pytest.raises(ScoringError, match="bos_id"):   # slamkit convention has BOS; strip it to check the error
        nobos = load_lm(tiny_llama_dir, model_args="bos_id=none,force=true")
        build_tokens([1, 2], nobos, PRESETS["slmeval"], name="x")
    with pytest.raises(ScoringError, match="exceed the model's context"):
        build_tokens([1] * 600, opt, PRESETS["slmeval"], name="long")
    with pytest.raises(ProtocolError, match="unknown field"):
        get_protocol("slmeval", {"scor": "sum"})
    broken = load_lm(tiny_llama_dir)
    with torch.no_grad():
        broken.model.get_output_embeddings().weight[5, 0] = float("nan")
    with pytest.raises(ScoringError, match="pairX:positive.*non-finite"):
        score_sequences(broken, [[1, 2, 3]], PRESETS["slmeval"], names=["pairX:positive"], progress=False)


def test_recorded_backend_is_the_one_that_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fused kernel reduces in float32 only: a bf16 protocol (slamkit-exact) runs, and records, torch."""
    from slmeval.scoring.logprobs import effective_backend

    monkeypatch.setenv("TRITON_INTERPRET", "1")   # lets 'triton' resolve without a GPU
    assert effective_backend("triton", "cpu", "float32") == "triton"
    assert effective_backend("triton", "cpu", "bfloat16") == "torch"
    assert effective_backend("auto", "cpu", "float32") == "torch"
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        effective_backend("triton", "cpu", "bfloat16")   # an impossible request is refused, not rewritten
