"""Batched sequence log-likelihoods over unit sequences.

Sequences are sorted by length (longest first, so the first batch shows any out-of-memory at once),
right-padded with an attention mask, and only the real (non-padding) positions are sent through the
LM head — padding costs no vocabulary work at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from slmeval.models import LoadedLM
from slmeval.progress import progress_bar
from slmeval.scoring.logprobs import target_logprobs
from slmeval.scoring.protocol import Protocol, reduce_dtype, sequence_score
# re-exported: callers import the token-id builders from here too
from slmeval.scoring.tokens import (ScoringError, TokenTable, build_tokens, check_protocol,  # noqa: F401
                                    context_length, table_tokens, token_arrays)


@dataclass(frozen=True)
class SequenceScore:
    logprob: float        # sum of log-probs over scored tokens (already rounded to `dtype` when not float64)
    n_scored: int
    dtype: str = "float64"   # what the sum and mean are computed in (Protocol.logprob_dtype; float32 → float64)

    def score(self, how: str) -> float:
        return sequence_score(self.logprob, self.n_scored, how, self.dtype)


@dataclass(frozen=True)
class ScoreColumns:
    """The scores of many sequences as arrays, one entry each: what a task keeps of its forward passes
    (two arrays instead of a `SequenceScore` object per sequence, so memory stays flat in the task's size)."""
    logprob: np.ndarray   # float64: each sequence's sum of scored log-probs (rounded to `dtype` when not float64)
    n_scored: np.ndarray  # int64
    dtype: str = "float64"

    def scores(self, how: str) -> np.ndarray:
        """`SequenceScore.score(how)` of every sequence: numpy's float64 division is IEEE's, as Python's."""
        if how != "mean":
            return self.logprob
        if self.dtype in ("float64", "float32"):
            return self.logprob / self.n_scored
        return np.array([sequence_score(lp, n, how, self.dtype)
                         for lp, n in zip(self.logprob.tolist(), self.n_scored.tolist())], dtype=np.float64)


def reduce_logprobs(per_token: np.ndarray, dtype: str) -> float:
    """Sum of a sequence's scored log-probs: float64, or accumulated in float32 and rounded to `dtype`
    (bfloat16 / float16), as torch's `sum` of a tensor of that dtype does."""
    if dtype in ("float32", "float64"):
        return float(per_token.sum())
    dt = getattr(torch, dtype)
    return float(torch.as_tensor(per_token, dtype=torch.float32).sum().to(dt))


def _sums(per_token: list[np.ndarray], dtype: str) -> list[float]:
    """`reduce_logprobs` of every sequence. In float64, the sequences of one length are stacked and summed
    along rows: numpy reduces each contiguous row with the same pairwise summation as a 1-D sum (bit-equal,
    checked by tests/test_regression_outputs.py), in one call instead of one per sequence."""
    if dtype not in ("float32", "float64"):
        return [reduce_logprobs(lp, dtype) for lp in per_token]
    if not per_token:
        return []
    lengths = np.fromiter(map(len, per_token), np.int64, len(per_token))
    order = np.argsort(lengths, kind="stable")       # groups of one length, found with numpy, not a dict per item
    cuts = (np.flatnonzero(np.diff(lengths[order])) + 1).tolist()
    out = np.zeros(len(per_token))                   # an empty sequence sums to 0.0
    for idx in np.split(order, cuts):
        if lengths[idx[0]]:
            # concatenate + reshape: the rows np.stack builds, without its Python loop over the arrays
            out[idx] = np.concatenate([per_token[i] for i in idx.tolist()]).reshape(len(idx), -1).sum(axis=1)
    return out.tolist()


def _padded_batch(seqs: list[Sequence[int]], pad: int, device: torch.device, max_inputs: int | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids, mask, rows, targets) on `device`: right-padded [B, W] ids and mask, and for every real
    prediction its row in the flattened [B·W] hidden states and its target id — built on the host
    (pinned when the device is CUDA, copied without blocking), so selecting the real positions needs no
    device-to-host sync (a boolean mask would).

    When the longest sequence is one token longer than the model's context (`max_inputs`), the last
    column is not fed: every row's last token is a target only, so no prediction needs it, and a model
    with learned absolute positions (OPT, GPT-2) would fail on a position past its table. Batches that
    fit are fed whole, as before (bit-identical scores). Built from masks over the whole batch, row by row
    as a mask is read, not sequence by sequence."""
    lengths = np.fromiter(map(len, seqs), np.int64, len(seqs))
    full = int(lengths[0])
    width = full - 1 if max_inputs is not None and full > max_inputs else full
    positions = np.arange(full)
    real = positions < lengths[:, None]
    padded = np.full((len(seqs), full), pad, dtype=np.int64)
    padded[real] = np.concatenate(seqs)
    predicts = positions < (lengths - 1)[:, None]           # position j predicts token j+1 (j < width always)
    rows = np.flatnonzero(predicts[:, :width])              # their rows in the fed [B, width] batch
    targets = padded[:, 1:][predicts[:, :-1]]
    ids, mask = np.ascontiguousarray(padded[:, :width]), real[:, :width].astype(np.int64)
    host = [torch.from_numpy(a) for a in (ids, mask, rows, targets)]
    if device.type == "cuda":
        host = [t.pin_memory() for t in host]
    return tuple(t.to(device, non_blocking=True) for t in host)   # type: ignore[return-value]


def sequence_logprobs(lm: LoadedLM, sequences: Sequence[Sequence[int]], *, batch_size: int = 8,
                      backend: str = "auto", progress: bool = True, description: str = "scoring",
                      logprob_dtype: str = "float32", group_tokens: int = 1 << 22) -> list[np.ndarray]:
    """Token-id sequences → per-position log-probs: out[i][j] = log p(seq_i[j+1] | seq_i[:j+1]),
    the log-softmax computed in `logprob_dtype`.

    Results stay on the device until a group of batches holds `group_tokens` predictions (or the last
    batch is done), then come to the host in one copy: no per-batch sync stalls the GPU."""
    out: list[np.ndarray | None] = [None] * len(sequences)
    for idx, values, begins, ends in _logprob_groups(lm, sequences, batch_size=batch_size, backend=backend,
                                                     progress=progress, description=description,
                                                     logprob_dtype=logprob_dtype, group_tokens=group_tokens):
        for i, begin, end in zip(idx, begins.tolist(), ends.tolist()):
            out[i] = values[begin:end]
    return out  # type: ignore[return-value]


@torch.inference_mode()
def _logprob_groups(lm: LoadedLM, sequences: Sequence[Sequence[int]], *, batch_size: int, backend: str,
                    progress: bool, description: str, logprob_dtype: str, group_tokens: int
                    ) -> Iterator[tuple[list[int], np.ndarray, np.ndarray, np.ndarray]]:
    """`sequence_logprobs` one group of batches at a time: (the group's sequence indices, their log-probs
    one after another as float64, each one's begin and end in them). A caller that reduces each group
    as it comes holds no more than one group's log-probs, whatever the number of sequences."""
    if batch_size < 1:
        raise ScoringError(f"batch size must be ≥ 1, got {batch_size}")
    lengths = _sizes(sequences)
    take = sequences.take if isinstance(sequences, TokenTable) else (lambda idx: [sequences[i] for i in idx])
    order = np.argsort(-lengths, kind="stable").tolist()   # = sorted(..., key=-len): stable, longest first
    weight, bias, softcap = lm.head
    pad = lm.mapping.pad_id if lm.mapping.pad_id is not None else 0   # masked: its value never matters
    dtype = getattr(torch, logprob_dtype)
    pending: list[tuple[list[int], torch.Tensor]] = []

    def group() -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
        values = torch.cat([lp for _, lp in pending]).cpu().numpy().astype(np.float64)
        idx = [i for batch, _ in pending for i in batch]
        ends = np.cumsum(lengths[idx] - 1)                # sequence i's predictions: len(seq_i) - 1 of them
        pending.clear()
        return idx, values, ends - (lengths[idx] - 1), ends

    with progress_bar(description, total=len(sequences), enabled=progress) as advance:
        in_group = 0
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            ids, mask, rows, targets = _padded_batch(take(idx), pad, lm.device, lm.max_length)
            hidden = lm.hidden_states(ids, mask)
            hidden = hidden.reshape(-1, hidden.shape[-1]).index_select(0, rows)
            # build_tokens checked every id against the vocabulary: no range check (a sync) in the kernel
            pending.append((idx, target_logprobs(hidden, weight, targets, bias, softcap=softcap, backend=backend,
                                                 dtype=dtype, check_targets=False)))
            in_group += len(rows)
            if in_group >= group_tokens:
                yield group()
                in_group = 0
            advance(len(idx))
        if pending:
            yield group()


def _sizes(seqs: Sequence[Sequence[int]]) -> np.ndarray:
    return seqs.sizes if isinstance(seqs, TokenTable) else np.fromiter(map(len, seqs), np.int64, len(seqs))


_INT64 = np.dtype(np.int64)


def distinct_sequences(seqs: Sequence[Sequence[int]], keys: Sequence[str] | None = None
                       ) -> tuple[list[int], list[int]]:
    """(position of the first copy of each distinct sequence; for every input, which distinct one it is).
    `keys`: one per sequence, equal exactly when the sequences are (their content hashes, already held:
    no bytes copy of every sequence is made then).

    Scoring each distinct sequence once makes equal sequences score equally: batches are formed by
    length, so two copies could otherwise sit in batches of different padded widths and differ by
    float rounding (~1e-7 in float32, more in bf16) — a pair with identical sides would stop being a
    tie, and the protocol's tie rule would not decide it."""
    seen: dict[object, int] = {}
    firsts: list[int] = []
    index: list[int] = []
    for i, seq in enumerate(seqs):
        if keys is not None:
            key: object = keys[i]
        else:
            # the int64 bytes of a sequence: one C call for the arrays the pipeline passes (a tuple of numpy
            # ints hashes element by element)
            is_int64 = type(seq) is np.ndarray and seq.dtype is _INT64 and seq.ndim == 1
            key = (seq if is_int64 else np.asarray(seq, dtype=np.int64)).tobytes()
        k = seen.setdefault(key, len(seen))
        if k == len(firsts):
            firsts.append(i)
        index.append(k)
    return firsts, index


def score_sequences(lm: LoadedLM, unit_seqs: Sequence[Sequence[int]], protocol: Protocol, *,
                    names: Sequence[str], batch_size: int = 8, backend: str = "auto",
                    progress: bool = True) -> list[SequenceScore]:
    """Score unit sequences under a protocol (equal sequences once, so they score equally); a NaN/inf
    score is an error naming the item."""
    tokens = token_arrays(unit_seqs, lm, protocol, names=names)
    firsts, index = distinct_sequences(tokens)
    cols = _score_tokens(lm, [tokens[i] for i in firsts], protocol, lambda k: names[firsts[k]],
                         batch_size=batch_size, backend=backend, progress=progress)
    scores = [SequenceScore(lp, n, cols.dtype) for lp, n in zip(cols.logprob.tolist(), cols.n_scored.tolist())]
    return [scores[k] for k in index]


def score_columns(lm: LoadedLM, unit_seqs: Sequence[Sequence[int]], protocol: Protocol, *, names: Sequence[str],
                  batch_size: int = 8, backend: str = "auto", progress: bool = True) -> ScoreColumns:
    """`score_sequences` for a caller that has already de-duplicated its sequences (the evaluator, across a
    whole task): every sequence scored as given, the scores as arrays, each group of batches reduced to
    its sums as it comes off the device, the token ids built a batch at a time."""
    tokens = table_tokens(unit_seqs, lm, protocol, names=names)
    return _score_tokens(lm, tokens, protocol, names.__getitem__, batch_size=batch_size, backend=backend,
                         progress=progress)


# Predictions per device-to-host copy when scoring: ~16,000 sequences of sBLIMP length, so a GPU waits on a
# sync once per many batches, while the host holds one group's log-probs (4 MB float32, 8 MB float64) at a
# time instead of the task's.
_GROUP = 1 << 20


def _score_tokens(lm: LoadedLM, tokens: TokenTable | Sequence[np.ndarray], protocol: Protocol, name: Callable[[int], str], *,
                  batch_size: int, backend: str, progress: bool) -> ScoreColumns:
    skip = context_length(lm, protocol) - 1       # predictions of prefix tokens are not scored
    dtype = reduce_dtype(protocol)
    n_scored = np.maximum(_sizes(tokens) - 1 - skip, 0)
    logprob = np.zeros(len(tokens))
    for idx, values, begins, ends in _logprob_groups(lm, tokens, batch_size=batch_size, backend=backend,
                                                     progress=progress, description="scoring",
                                                     logprob_dtype=protocol.logprob_dtype, group_tokens=_GROUP):
        logprob[idx] = _sums([values[b + skip:e] for b, e in zip(begins.tolist(), ends.tolist())], dtype)
    bad = np.flatnonzero(~np.isfinite(logprob))
    if bad.size:
        k = int(bad[0])
        raise ScoringError(f"{name(k)}: log-likelihood is {float(logprob[k])} (non-finite model output; "
                           "try --dtype float32)")
    return ScoreColumns(logprob, n_scored, dtype)
