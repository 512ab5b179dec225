"""Unit sequences → the token ids a protocol scores: start ids + mapped units + [EOS], every sequence
checked (vocabulary, context, start and end tokens) before any forward pass, with one error naming the
first sequence refused.

`table_tokens` checks a whole task with numpy and hands the scorer a `TokenTable` that builds the ids a
batch at a time, so a task's token ids never sit in memory all together.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from slmeval.models import LoadedLM, ModelError
from slmeval.scoring.protocol import Protocol


class ScoringError(ValueError):
    pass


def build_tokens(units: Sequence[int], lm: LoadedLM, protocol: Protocol, *, name: str = "") -> list[int]:
    """Units → the token ids the protocol scores: start ids + unit tokens... + [EOS].

    The start ids are the protocol's start token plus the mapping's prefix (SpiritLM's `[Speech]`);
    `context_length` says how many of them are context only.
    """
    m = lm.mapping
    top = max(units, default=-1)
    room = m.capacity(lm.vocab_size)
    if top >= room or min(units, default=0) < 0:
        bad = top if top >= room else min(units)
        where = (f"unit {bad} + offset {m.offset} = token {bad + m.offset}" if m.offset is not None
                 else f"unit {bad} (the model's unit table holds {room})")
        raise ScoringError(f"{name}: {where} is outside the model vocabulary ({lm.vocab_size}); "
                           "wrong tokenizer (K) or offset?")
    try:
        tokens = m.start_ids(protocol.start_token) + m.unit_tokens(units)
    except ModelError as err:
        raise ScoringError(f"protocol {protocol.name!r}: {err}") from None
    if protocol.score_eos:
        if m.eos_id is None:
            raise ScoringError(f"protocol {protocol.name!r} scores a final EOS but the model has no eos_id; "
                               "pass --model-args eos_id=N")
        tokens.append(m.eos_id)
    if len(tokens) < 2:
        raise ScoringError(f"{name}: nothing to score (a single unit and no start token)")
    # The last token is a target only, never an input: W inputs + the token they predict fit a context of W.
    if lm.max_length is not None and len(tokens) - 1 > lm.max_length:
        raise ScoringError(f"{name}: {len(tokens)} tokens ({len(tokens) - 1} model inputs) exceed the model's "
                           f"context of {lm.max_length}; pairs are never truncated (it would change what is compared)")
    return tokens


_CHUNK = 1 << 15    # sequences mapped at once: bounds the int64 index temporaries, whatever the task's size


class TokenTable(Sequence[np.ndarray]):
    """The token ids of unit sequences (start ids + mapped units + [EOS]), every sequence already checked,
    built on demand a batch at a time: a task's token ids never sit in memory all together."""

    def __init__(self, unit_seqs: Sequence[Sequence[int]], start: list[int], end: list[int], lm: LoadedLM,
                 lengths: np.ndarray):
        self.units, self.start, self.end, self.lm = unit_seqs, start, end, lm
        self.sizes = len(start) + lengths + len(end)        # each sequence's number of tokens

    def __len__(self) -> int:
        return len(self.units)

    def __getitem__(self, i):  # type: ignore[override]
        return self.take([i])[0]

    def take(self, idx: Sequence[int]) -> list[np.ndarray]:
        """The token ids of sequences `idx` (views of one new array), built with numpy a chunk at a time."""
        idx = np.asarray(idx, dtype=np.int64)
        sizes = self.sizes[idx]
        ends = np.cumsum(sizes)
        begins = ends - sizes
        out = np.empty(int(ends[-1]) if len(idx) else 0, dtype=np.int64)
        n_fixed = len(self.start) + len(self.end)
        for a in range(0, len(idx), _CHUNK):
            part = idx[a:a + _CHUNK].tolist()
            _map_units(out, [self.units[i] for i in part], sizes[a:a + _CHUNK] - n_fixed,
                       begins[a:a + _CHUNK] + len(self.start), self.lm)
        for k, token in enumerate(self.start):
            out[begins + k] = token
        if self.end:
            out[ends - 1] = self.end[0]
        return [out[a:b] for a, b in zip(begins.tolist(), ends.tolist())]


def table_tokens(unit_seqs: Sequence[Sequence[int]], lm: LoadedLM, protocol: Protocol, *,
                 names: Sequence[str]) -> TokenTable | list[np.ndarray]:
    """The token ids `build_tokens` gives every sequence, as a `TokenTable` when all of them pass its checks
    (checked here, with numpy, a chunk of sequences at a time). When any sequence would be refused (a unit
    outside the vocabulary, no EOS, too short or too long), every sequence goes through `build_tokens` in
    order, so the error is the one it gives, naming the first."""
    if not len(unit_seqs):
        return []
    m = lm.mapping
    try:
        start = m.start_ids(protocol.start_token)
    except ModelError:
        start = None
    end = [m.eos_id] if protocol.score_eos else []
    lengths = np.fromiter(map(len, unit_seqs), np.int64, len(unit_seqs))
    sizes = len(start or ()) + lengths + len(end)
    fine = (start is not None and None not in end and int(sizes.min()) >= 2
            and (lm.max_length is None or int(sizes.max()) <= lm.max_length))
    for a in range(0, len(unit_seqs), _CHUNK):
        if not fine:
            break
        flat = _flat_units(unit_seqs[a:a + _CHUNK], lengths[a:a + _CHUNK])
        fine = not flat.size or (int(flat.min()) >= 0 and int(flat.max()) < m.capacity(lm.vocab_size))
    if not fine:
        return [np.asarray(build_tokens(u, lm, protocol, name=n), dtype=np.int64) for u, n in zip(unit_seqs, names)]
    return TokenTable(unit_seqs, start, end, lm, lengths)


def token_arrays(unit_seqs: Sequence[Sequence[int]], lm: LoadedLM, protocol: Protocol, *,
                 names: Sequence[str]) -> list[np.ndarray]:
    """`build_tokens` of every sequence (the same ids, int64, views of one array), all built at once."""
    table = table_tokens(unit_seqs, lm, protocol, names=names)
    return table.take(range(len(table))) if isinstance(table, TokenTable) else table


def _flat_units(unit_seqs: Sequence[Sequence[int]], lengths: np.ndarray) -> np.ndarray:
    flat = np.concatenate(unit_seqs).astype(np.int64, copy=False)   # 1-D sequences: one C call
    if flat.ndim != 1 or len(flat) != int(lengths.sum()):
        flat = np.concatenate([np.asarray(u, dtype=np.int64).reshape(-1) for u in unit_seqs])
    return flat


def _map_units(out: np.ndarray, unit_seqs: Sequence[Sequence[int]], lengths: np.ndarray, at: np.ndarray,
               lm: LoadedLM) -> None:
    """Writes the token ids of these (checked) sequences' units into `out`, sequence i's from `at[i]`."""
    m = lm.mapping
    flat = _flat_units(unit_seqs, lengths)
    mapped = flat + int(m.offset) if m.unit_ids is None else np.asarray(m.unit_ids, dtype=np.int64)[flat]
    unit_begins = np.cumsum(lengths) - lengths
    out[np.repeat(at - unit_begins, lengths) + np.arange(len(flat))] = mapped


def check_protocol(lm: LoadedLM, protocol: Protocol) -> None:
    """The protocol's start / end tokens exist in this model's mapping — checked once, before any audio work."""
    m = lm.mapping
    needed = ([protocol.start_token] if protocol.start_token != "none" else []) + (["eos"] if protocol.score_eos else [])
    for token in needed:
        if getattr(m, f"{token}_id") is not None:
            continue
        if token == "bos" and m.eos_id is not None:
            hint = "use a protocol that starts with EOS (--protocol cuervo, or --protocol-args start_token=eos)"
        elif token == "eos":
            hint = "use --protocol-args score_eos=false"
        else:
            hint = "use --protocol-args start_token=none"
        raise ScoringError(f"protocol {protocol.name!r} needs the model's {token.upper()} token, but {lm.path} has none "
                           f"({m.sources.get(f'{token}_id', 'absent')}): {hint}, or pass --model-args {token}_id=N")


def context_length(lm: LoadedLM, protocol: Protocol) -> int:
    """Leading tokens of every sequence that are context only (start token + prefix): the first scored
    prediction is the token right after them."""
    return max(len(lm.mapping.start_ids(protocol.start_token)), 1)
