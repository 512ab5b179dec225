"""The evaluator's memory-lean scoring path (issue 22): scores as arrays, log-probs reduced one group of
batches at a time, credits for every pair at once — each checked against the per-sequence path it
replaces and against independent arithmetic."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import N_UNITS
from slmeval.data import Pair, Utterance
from slmeval.metrics.families import pair_credit
from slmeval.models import load_lm
from slmeval.results.samples import task_samples
from slmeval.scoring import PRESETS, ScoreColumns, SequenceScore, distinct_sequences, score_columns
from slmeval.scoring import batch as scoring_batch
from slmeval.scoring import build_tokens, score_sequences, sequence_logprobs


@pytest.fixture(scope="module")
def llama(tiny_llama_dir):
    return load_lm(tiny_llama_dir)


def _units(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, N_UNITS, size=int(rng.integers(1, 30))).astype(np.int64) for _ in range(n)]


@pytest.mark.parametrize("preset", ["slmeval", "slamkit", "cuervo"])
def test_score_columns_reduced_group_by_group_equal_the_per_sequence_sums(llama, monkeypatch, preset):
    """Whatever the group size (one prediction per group, a group ending inside a batch, one group for
    all), each sequence's sum is bit-equal to numpy's 1-D sum of its own scored log-probs."""
    protocol = PRESETS[preset]
    units = _units(13, seed=1)
    tokens = [build_tokens(u, llama, protocol) for u in units]
    skip = max(len(llama.mapping.start_ids(protocol.start_token)), 1) - 1
    per_token = sequence_logprobs(llama, tokens, batch_size=4, backend="torch", progress=False)
    want = [float(np.sum(lp[skip:])) for lp in per_token]
    for group in (1, 7, 1 << 20):
        monkeypatch.setattr(scoring_batch, "_GROUP", group)
        cols = score_columns(llama, units, protocol, names=[f"s{i}" for i in range(13)], batch_size=4,
                             backend="torch", progress=False)
        assert cols.logprob.tolist() == want, group
        assert cols.n_scored.tolist() == [len(t) - 1 - skip for t in tokens]
    # the per-sequence objects other callers get are the same numbers
    objs = score_sequences(llama, units, protocol, names=["s"] * 13, batch_size=4, backend="torch", progress=False)
    assert [s.logprob for s in objs] == want and [s.n_scored for s in objs] == cols.n_scored.tolist()


@pytest.mark.parametrize("dtype", ["float64", "bfloat16", "float16"])
@pytest.mark.parametrize("how", ["mean", "sum"])
def test_score_columns_scores_equal_sequence_score(dtype, how):
    logprob = np.array([-12.5, -3.0, -7.0, -1e-3, -100.25])
    n = np.array([5, 3, 7, 1, 9])
    cols = ScoreColumns(logprob, n, dtype)
    want = [SequenceScore(float(lp), int(k), dtype).score(how) for lp, k in zip(logprob, n)]
    assert cols.scores(how).tolist() == want
    if how == "mean" and dtype == "float64":
        assert want == [-2.5, -1.0, -1.0, -1e-3, -100.25 / 9]      # the division, by hand


def test_distinct_sequences_by_content_keys_equal_by_bytes():
    seqs = [np.array([1, 2, 3]), np.array([4]), np.array([1, 2, 3]), np.array([4]), np.array([5, 6])]
    keys = ["a", "b", "a", "b", "c"]           # equal exactly when the sequences are
    assert distinct_sequences(seqs, keys=keys) == distinct_sequences(seqs) == ([0, 1, 4], [0, 1, 0, 1, 2])


def test_task_samples_credit_every_pair_as_pair_credit_ties_included():
    """Scores (sum) with exact ties, a ±0.0 tie, a positive ahead by the smallest float step and behind."""
    lp = [-1.0, -2.0, -3.0, -3.0, 0.0, -0.0, np.nextafter(-5.0, 0.0), -5.0, -5.0, np.nextafter(-5.0, 0.0)]
    cols = ScoreColumns(np.array(lp), np.ones(10, dtype=np.int64))
    pairs = [Pair(f"p{i}", Utterance(f"p{i}/positive", units=np.arange(2)), Utterance(f"p{i}/negative",
                                                                                        units=np.arange(3)),
                  meta={"type": "x" if i % 2 else "y"}) for i in range(5)]
    units = [u for p in pairs for u in (p.positive.units, p.negative.units)]
    for tie in (0.5, 0.0):
        samples, frame = task_samples(pairs, units, cols, np.arange(10), "sum", tie)
        want = [pair_credit(lp[2 * i], lp[2 * i + 1], tie) for i in range(5)]
        assert want == [1.0, tie, tie, 1.0, 0.0]
        assert [s["correct"] for s in samples] == want == frame["correct"].tolist()
        assert [s["positive_units"] for s in samples] == [2] * 5 and frame["type"].tolist() == list("yxyxy")
    # utterances mapped onto shared distinct scores (`which`): both sides of pair 0 read score 1 → a tie
    samples, _ = task_samples(pairs[:1], units[:2], cols, [1, 1], "mean", 0.5)
    assert samples[0]["correct"] == 0.5 and samples[0]["positive_logprob"] == samples[0]["negative_logprob"] == -2.0


@pytest.mark.parametrize("preset", ["slmeval", "slamkit", "cuervo"])
def test_token_table_builds_what_build_tokens_builds_across_chunk_edges(llama, monkeypatch, preset):
    """Checked a chunk of 4 sequences at a time (13 sequences: chunks of 4, 4, 4, 1), built for any subset
    in any order; a unit outside the vocabulary in the last chunk is the error `build_tokens` gives, naming
    that sequence."""
    from slmeval.scoring import tokens as tokens_module

    monkeypatch.setattr(tokens_module, "_CHUNK", 4)
    protocol = PRESETS[preset]
    units = _units(13, seed=4)
    names = [f"task:p{i}" for i in range(13)]
    table = tokens_module.table_tokens(units, llama, protocol, names=names)
    assert isinstance(table, tokens_module.TokenTable)
    want = [build_tokens(u, llama, protocol) for u in units]
    assert table.sizes.tolist() == [len(w) for w in want]
    for idx in ([12, 0, 5], list(range(13)), [3], []):
        assert [t.tolist() for t in table.take(idx)] == [want[i] for i in idx]
    bad = [*units[:12], np.array([1, llama.vocab_size], dtype=np.int64)]
    with pytest.raises(scoring_batch.ScoringError, match=r"^task:p12: unit"):
        tokens_module.table_tokens(bad, llama, protocol, names=names)
