"""`slmeval loss` against the peers' own rules at the context boundary.

- slm_scaling (tiagoCuervo/slm_scaling src/slm/evaluate.py `score_shard` + `summarize`, task loss): a
  packed shard's stored sequence s (units + EOS) is read as inputs [EOS] + s[:-1] predicting s, one
  pass, refused above block_size; the per-utterance NLL is the mean over s, `mean_nll` the plain mean
  over utterances. Transcribed in float64 on the native tensors (tests/_model_replicas.py).
- lm-eval (lm_eval/utils.py `get_rolling_token_windows`, run from the installed package): longer
  sequences are tiled into windows of max_seq_len inputs.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from _model_replicas import save_slm_scaling, slm_scaling_args, slm_scaling_logprobs_f64
from _slm_scaling_shard import write_shard
from slmeval.cli import app
from slmeval.models import load_lm
from slmeval.scaling.loss import corpus_loss

K = 500                  # units; EOS = 500, PAD = 501, vocab 502 (slm_data's layout)
BLOCK = 16               # the replica's block_size: the model context W


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    return save_slm_scaling(tmp_path_factory.mktemp("slm") / "ckpt", slm_scaling_args(block_size=BLOCK), seed=5)


def stored(n_units: int, seed: int) -> list[int]:
    """A sample as slm_data stores it: collapsed units (no two equal neighbours) + the EOS code."""
    rng = np.random.default_rng(seed)
    units = [int(rng.integers(0, K))]
    while len(units) < n_units:
        u = int(rng.integers(0, K))
        if u != units[-1]:
            units.append(u)
    return units + [K]


def slm_scaling_utterance_nll(ckpt, seq: list[int]) -> float:
    """score_shard with include_terminal_eos=True: inputs [EOS] + seq[:-1], targets seq, mean NLL."""
    if len(seq) > BLOCK:
        raise ValueError("evaluation sequence exceeds model block_size")   # what slm_scaling raises
    return -float(slm_scaling_logprobs_f64(ckpt, [K] + seq).mean())


def lm_eval_rolling_nll(ckpt, seq: list[int]) -> tuple[float, int]:
    """loglikelihood_rolling's tiling (EOS as prefix token, max_seq_len = block_size) on the float64
    model: (mean NLL over seq, number of windows). Each window is one forward over its inputs."""
    from lm_eval.utils import get_rolling_token_windows

    nll, n_windows = [], 0
    for inp, pred in get_rolling_token_windows(seq, prefix_token=K, max_seq_len=BLOCK, context_len=1):
        assert len(inp) <= BLOCK
        lp = slm_scaling_logprobs_f64(ckpt, list(inp) + [pred[-1]])      # log p(t_j | t_<j), j ≥ 1
        nll += (-lp[len(lp) - len(pred):]).tolist()
        n_windows += 1
    return float(np.mean(nll)), n_windows


def loss_cli(*args: str) -> dict:
    res = CliRunner().invoke(app, ["loss", *args])
    assert res.exit_code == 0, res.output
    return res


def test_loss_on_a_packed_shard_equals_slm_scalings_mean_nll_at_the_block_boundary(replica, tmp_path):
    """Stored lengths block_size−2 .. block_size (the last one fills the context exactly) plus shorter
    ones: utterance-weighted loss = slm_scaling's mean_nll (1e-6 relative), no --model-args, each
    utterance in one window."""
    lengths = [BLOCK - 2, BLOCK - 1, BLOCK, 3, 7]
    seqs = [stored(n - 1, seed=n) for n in lengths]
    shard = write_shard(tmp_path / "val" / "shard-00000",
                        [(f"ls:val:{i}", s, {"dataset": "ls", "split": "val"}) for i, s in enumerate(seqs)], eos=K)
    per_utt = tmp_path / "per_utt.jsonl"
    out = tmp_path / "loss.json"
    loss_cli("--model", str(replica), "--data", str(shard), "--average", "utterance", "--output", str(out),
             "--per-utterance", str(per_utt))
    ref = [slm_scaling_utterance_nll(replica, s) for s in seqs]
    payload = json.loads(out.read_text())
    mean_nll = float(np.mean(ref))                                       # summarize(): np.mean over rows
    assert payload["loss"] == pytest.approx(mean_nll, rel=1e-6)
    assert payload["loss_utterance_weighted"] == payload["loss"] and payload["average"] == "utterance"
    assert payload["loss_token_weighted"] == pytest.approx(
        sum(r * len(s) for r, s in zip(ref, seqs)) / sum(map(len, seqs)), rel=1e-6)
    assert payload["score_eos"] == "all" and payload["n_eos_scored"] == len(seqs)   # the stored EOS is a target
    assert payload["n_tokens"] == sum(map(len, seqs)) and payload["window"] == BLOCK
    assert payload["data_tokenizer"]["eos_token"] == K                  # how the data was encoded, recorded
    rows = [json.loads(line) for line in per_utt.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"ls:val:{i}" for i in range(len(seqs))]
    assert [r["nll"] for r in rows] == pytest.approx(ref, rel=1e-6)
    assert all(r["n_windows"] == 1 for r in rows)                       # block_size tokens fit one pass
    # --no-score-eos: the pair-task rule (terminal EOS not a target), per utterance.
    loss_cli("--model", str(replica), "--data", str(shard), "--no-score-eos", "--per-utterance", str(per_utt))
    no_eos = [-float(slm_scaling_logprobs_f64(replica, [K] + s[:-1]).mean()) for s in seqs]
    assert [json.loads(line)["nll"] for line in per_utt.read_text().splitlines()] == pytest.approx(no_eos, rel=1e-6)
    bad = CliRunner().invoke(app, ["loss", "--model", str(replica), "--data", str(shard), "--average", "utt"])
    assert bad.exit_code == 2 and "expected one of token, utterance" in bad.output


def test_past_the_block_size_loss_is_lm_evals_rolling_tiling(replica, tmp_path):
    """Stored lengths block_size+1 .. 2·block_size+3 (slm_scaling refuses them): each utterance's NLL is
    lm-eval's rolling windows on the float64 model; the split folder's shards are read in order."""
    short = [stored(BLOCK - 1, seed=1)]
    long = [stored(n - 1, seed=n) for n in (BLOCK + 1, 2 * BLOCK, 2 * BLOCK + 3)]
    with pytest.raises(ValueError, match="exceeds model block_size"):
        slm_scaling_utterance_nll(replica, long[0])
    write_shard(tmp_path / "val" / "shard-00000", [("a", short[0], {})], eos=K)
    write_shard(tmp_path / "val" / "shard-00001", [(f"b{i}", s, {}) for i, s in enumerate(long)], eos=K, skips=2)
    per_utt = tmp_path / "per_utt.jsonl"
    res = loss_cli("--model", str(replica), "--data", str(tmp_path / "val"), "--per-utterance", str(per_utt))
    assert "2 record(s) the encoder could not encode" in res.output     # skips.jsonl is not silent
    rows = {r["id"]: r for r in map(json.loads, per_utt.read_text().splitlines())}
    assert list(rows) == ["a", "b0", "b1", "b2"]
    for key, seq in zip(["a", "b0", "b1", "b2"], short + long):
        nll, n_windows = lm_eval_rolling_nll(replica, seq)
        assert rows[key]["nll"] == pytest.approx(nll, rel=1e-6) and rows[key]["n_windows"] == n_windows
    assert [rows[k]["n_windows"] for k in ("a", "b0", "b1", "b2")] == [1, 2, 2, 3]


def test_a_model_with_learned_positions_reads_w_inputs_at_most(tmp_path):
    """OPT's position table stops at its context: a sequence of W + 1 tokens is scored from W inputs
    (feeding W + 1 would index past the table), in the loss and in pair scoring alike."""
    from lm_eval.utils import get_rolling_token_windows
    from transformers import OPTConfig, OPTForCausalLM

    from slmeval.scoring import PRESETS, score_sequences
    from slmeval.scoring.batch import ScoringError, build_tokens

    W, offset = 8, 4
    torch.manual_seed(0)
    model = OPTForCausalLM(OPTConfig(vocab_size=20 + offset, hidden_size=16, ffn_dim=32, num_hidden_layers=1,
                                     num_attention_heads=2, max_position_embeddings=W, word_embed_proj_dim=16))
    model.config.offset = offset
    model.save_pretrained(tmp_path / "opt")
    lm = load_lm(tmp_path / "opt")
    assert lm.max_length == W and lm.mapping.bos_id == 2
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 20, n).tolist() for n in (W - 1, W, W + 1, 2 * W + 1)]
    ref64 = OPTForCausalLM.from_pretrained(tmp_path / "opt", dtype=torch.float64).eval()
    with pytest.raises(IndexError):                                    # the negative control: W + 1 positions
        ref64(torch.tensor([[2] + [u + offset for u in seqs[1]]]))
    means = []
    for units in seqs:
        nll = []
        for inp, pred in get_rolling_token_windows([u + offset for u in units], prefix_token=2, max_seq_len=W,
                                                   context_len=1):
            with torch.no_grad():
                logp = torch.log_softmax(ref64(torch.tensor([inp])).logits[0], -1)
            full = list(inp) + [pred[-1]]
            nll += [-float(logp[j, full[j + 1]]) for j in range(len(inp) - len(pred), len(inp))]
        means.append(float(np.mean(nll)))
    result = corpus_loss(lm, seqs, progress=False)
    assert [r["nll"] for r in result.per_utterance] == pytest.approx(means, rel=1e-5)
    assert [r["n_windows"] for r in result.per_utterance] == [1, 1, 2, 3]
    # Pairs: a side of W units after BOS (W + 1 tokens) is scored from W inputs, not refused.
    scores = score_sequences(lm, seqs[:2], PRESETS["slmeval"], names=["a", "b"], progress=False)
    assert [s.score("mean") for s in scores] == pytest.approx([-m for m in means[:2]], rel=1e-5)
    assert len(build_tokens(seqs[1], lm, PRESETS["slmeval"])) == W + 1
    with pytest.raises(ScoringError, match=r"long: 10 tokens \(9 model inputs\) exceed the model's context of 8"):
        build_tokens(seqs[2], lm, PRESETS["slmeval"], name="long")              # one more: refused, never cut
