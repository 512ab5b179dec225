"""Test loss of a checkpoint: mean NLL per unit over held-out audio or pre-tokenised units.

Every sequence is the units (+ the model's offset), after a start token (BOS, else EOS, as
lm-eval's rolling loglikelihood prepends its prefix token; with neither, the first unit cannot be
predicted and is not counted), optionally followed by EOS. Sequences longer than the model's context
W are scored in rolling windows as lm-eval's `loglikelihood_rolling` does: each token is predicted
exactly once; a window holds at most W tokens (the scorer feeds the final target too, so W − 1
predictions) and every prediction in it has at least `context_len` tokens of context (default 1:
disjoint windows, lm-eval's choice; larger values overlap windows to give each prediction more
context at more compute).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".opus"}


class LossInputError(ValueError):
    pass


def rolling_windows(n_tokens: int, window: int, context_len: int = 1) -> list[tuple[int, int, int]]:
    """Windows over a token sequence of length n_tokens: (start, end, n_pred). The model reads
    tokens[start:end] and the last n_pred of its predictions (tokens end−n_pred .. end−1) count.
    Positions 1 .. n_tokens−1 are predicted exactly once."""
    if window < 2:
        raise ValueError(f"context window must hold at least 2 tokens, got {window}")
    if not 1 <= context_len < window:
        raise ValueError(f"context_len must be in [1, {window - 1}], got {context_len}")
    out = []
    end = min(n_tokens, window)
    if n_tokens >= 2:
        out.append((0, end, end - 1))
    while end < n_tokens:
        new_end = min(n_tokens, end + window - context_len)
        out.append((max(0, new_end - window), new_end, new_end - end))
        end = new_end
    return out


@dataclass
class LossResult:
    loss: float                # mean NLL per predicted token (nats)
    n_tokens: int              # predicted tokens
    n_sequences: int
    n_windows: int
    total_nll: float
    window: int | None
    context_len: int
    start_token: str
    score_eos: bool
    prefix_ids: list[int] = field(default_factory=list)   # tokens after the start token (SpiritLM's [Speech])

    def to_dict(self) -> dict:
        return {**asdict(self), "bits_per_token": self.loss / math.log(2), "perplexity": math.exp(self.loss)}


def sequence_tokens(units: Sequence[int], lm, *, score_eos: bool = False) -> tuple[list[int], str, int]:
    """([start] + prefix + (unit + offset)... (+ EOS), the start token, how many tokens precede the units).
    The start token is BOS, else EOS, else none; the prefix is the model's own (SpiritLM: `[Speech]`)."""
    m = lm.mapping
    if units and max(units) >= m.capacity(lm.vocab_size):
        raise LossInputError(f"unit {max(units)} is outside what the model's unit mapping holds "
                             f"({m.capacity(lm.vocab_size)} units, vocabulary {lm.vocab_size}); wrong tokenizer or offset?")
    start = "bos" if m.bos_id is not None else ("eos" if m.eos_id is not None else "none")
    head = m.start_ids(start)
    tokens = head + m.unit_tokens(units)
    if score_eos:
        if m.eos_id is None:
            raise LossInputError("--score-eos needs the model's eos_id (pass --model-args eos_id=N)")
        tokens.append(m.eos_id)
    return tokens, start, len(head)


def corpus_loss(lm, unit_seqs: Sequence[Sequence[int]], *, context_len: int = 1, score_eos: bool = False,
                batch_size: int = 8, progress: bool = True) -> LossResult:
    """Mean NLL per predicted token over all sequences (token-weighted, as a training loss is)."""
    from slmeval.scoring.batch import sequence_logprobs

    window = lm.max_length
    windows_tokens: list[list[int]] = []
    n_pred: list[int] = []
    start = "none"
    for units in unit_seqs:
        tokens, start, n_head = sequence_tokens(units, lm, score_eos=score_eos)
        spans = rolling_windows(len(tokens), window or max(len(tokens), 2), context_len)
        for s, e, n in spans:
            # Predictions of prefix tokens are not the model's loss on speech: only tokens from n_head count.
            n = e - max(e - n, n_head, 1) if e > n_head else 0
            if n:
                windows_tokens.append(tokens[s:e])
                n_pred.append(n)
    if not windows_tokens:
        raise LossInputError("nothing to score: every sequence is shorter than 2 tokens")
    per_window = sequence_logprobs(lm, windows_tokens, batch_size=batch_size, progress=progress,
                                   description="test loss")
    total = 0.0
    count = 0
    for lp, n in zip(per_window, n_pred):
        total -= float(np.asarray(lp, dtype=np.float64)[len(lp) - n:].sum())
        count += n
    if not math.isfinite(total):
        raise LossInputError(f"the summed NLL is {total} (non-finite model output; try --dtype float32)")
    return LossResult(loss=total / count, n_tokens=count, n_sequences=len(unit_seqs), n_windows=len(windows_tokens),
                      total_nll=total, window=window, context_len=context_len, start_token=start, score_eos=score_eos,
                      prefix_ids=list(lm.mapping.prefix_ids))


def read_units_jsonl(path: Path) -> list[list[int]]:
    """One JSON object per line with a "units" list of non-negative ints (other keys ignored)."""
    seqs = []
    with open(path) as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                units = json.loads(line)["units"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise LossInputError(f"{path}:{i}: expected a JSON object with a 'units' list ({exc})") from exc
            if not isinstance(units, list) or not all(isinstance(u, int) and u >= 0 for u in units):
                raise LossInputError(f"{path}:{i}: 'units' must be a list of non-negative integers")
            seqs.append(units)
    if not seqs:
        raise LossInputError(f"{path}: no sequences")
    return seqs


def load_held_out(data: Path, *, tokenizer, cache_dir: Path | None, use_cache: bool,
                  allow_pickle: bool = False, progress: bool = True) -> list[list[int]]:
    """Units of the held-out set: a units JSONL, or a folder of audio tokenised through the units layer
    (`tokenizer`: a spec string or an already loaded UnitTokenizer)."""
    data = Path(data)
    if data.is_file():
        return read_units_jsonl(data)
    if not data.is_dir():
        raise LossInputError(f"{data}: neither a units JSONL file nor a folder of audio")
    files = sorted(p for p in data.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise LossInputError(f"{data}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
    if tokenizer is None:
        raise LossInputError(f"{data}: audio input needs --tokenizer (a folder with tokenizer.json or 'kind:k=v,...')")
    from slmeval.units import UnitCache, default_cache_dir, load_tokenizer, tokenize_sources

    tok = load_tokenizer(tokenizer, allow_pickle=allow_pickle) if isinstance(tokenizer, str) else tokenizer
    cache = UnitCache(cache_dir or default_cache_dir(), tok.identity) if use_cache else None
    units, _ = tokenize_sources(list(files), [str(f) for f in files], tok, cache, progress=progress)
    return [u.tolist() for u in units]


def non_embedding_params(model) -> int:
    """Parameters minus the input embedding and an untied output head (the N of scaling laws)."""
    total = sum(p.numel() for p in model.parameters())
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    total -= emb.numel()
    if head is not None and head.weight.data_ptr() != emb.data_ptr():
        total -= head.weight.numel()
    return int(total)


def append_run(table: Path, row: dict) -> None:
    """Append one run to a CSV / JSONL runs table (created if missing), atomically."""
    import pandas as pd

    from slmeval.io import atomic_write_text
    from slmeval.scaling.tables import read_table

    table = Path(table)
    if table.suffix.lower() not in (".csv", ".jsonl"):
        raise LossInputError(f"{table}: --append-to supports .csv and .jsonl tables")
    df = read_table(table) if table.exists() else pd.DataFrame()
    if "name" in df and str(row["name"]) in set(df["name"].astype(str)):
        raise LossInputError(f"{table}: a run named {row['name']!r} is already there")
    df = pd.concat([df, pd.DataFrame([row])], ignore_index=True)
    text = df.to_csv(index=False) if table.suffix.lower() == ".csv" else df.to_json(orient="records", lines=True)
    atomic_write_text(table, text)
