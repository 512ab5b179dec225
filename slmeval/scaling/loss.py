"""Test loss of a checkpoint: NLL per unit over held-out audio, pre-tokenised units or slm_scaling's
packed shards, averaged two ways.

Every sequence is the units (+ the model's offset), after a start token (BOS, else EOS, as
lm-eval's rolling loglikelihood prepends its prefix token; with neither, the first unit cannot be
predicted and is not counted), optionally followed by EOS. A model of context W reads at most W
inputs and predicts the token after each: a sequence of up to W + 1 tokens (start token + W targets)
is scored in one pass, as slm_scaling scores an utterance whose units + EOS fill its block_size
(tiagoCuervo/slm_scaling src/slm/evaluate.py `score_shard`). Longer ones are tiled as lm-eval's
`get_rolling_token_windows` tiles them (EleutherAI/lm-evaluation-harness lm_eval/utils.py): each token
predicted exactly once, each window W inputs, and every prediction with at least `context_len` tokens
of context (default 1: disjoint windows, lm-eval's choice; larger values overlap windows).

Two averages: token-weighted (total NLL / predicted tokens, as a training loss is) and
utterance-weighted (the mean over utterances of each utterance's mean NLL: slm_scaling's `mean_nll`,
src/slm/evaluate.py `summarize`).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".opus"}
AVERAGES = {"token": "token-weighted mean NLL per unit (total NLL / scored tokens)",
            "utterance": "utterance-weighted mean NLL (mean over utterances of each one's mean NLL; "
                         "slm_scaling's mean_nll)"}


class LossInputError(ValueError):
    pass


def rolling_windows(n_tokens: int, window: int, context_len: int = 1) -> list[tuple[int, int, int]]:
    """Windows over a token sequence of length n_tokens for a model of `window` (W) inputs:
    (start, end, n_pred). The model reads tokens[start:end − 1] (at most W inputs) and its predictions
    of the last n_pred tokens (end − n_pred .. end − 1) count. Positions 1 .. n_tokens − 1 are predicted
    exactly once; each prediction sees at least min(context_len, its position) tokens."""
    if window < 1:
        raise ValueError(f"context window must hold at least 1 input, got {window}")
    if not 1 <= context_len <= window:
        raise ValueError(f"context_len must be in [1, {window}], got {context_len}")
    out = []
    end = min(n_tokens, window + 1)
    if n_tokens >= 2:
        out.append((0, end, end - 1))
    while end < n_tokens:
        new_end = min(n_tokens, end + window - context_len + 1)
        out.append((max(0, new_end - window - 1), new_end, new_end - end))
        end = new_end
    return out


@dataclass
class LossResult:
    loss: float                # the average named by `average`
    average: str               # "token" | "utterance" (AVERAGES)
    loss_token_weighted: float
    loss_utterance_weighted: float
    n_tokens: int              # predicted tokens
    n_sequences: int
    n_windows: int
    total_nll: float
    window: int | None
    context_len: int
    start_token: str
    score_eos: str             # "all" | "none" | "data" (the terminal EOS where the data stores one)
    n_eos_scored: int
    prefix_ids: list[int] = field(default_factory=list)   # tokens after the start token (SpiritLM's [Speech])
    per_utterance: list[dict] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "per_utterance"}
        return {**out, "average_means": AVERAGES[self.average], "bits_per_token": self.loss / math.log(2),
                "perplexity": math.exp(self.loss)}


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
            raise LossInputError("scoring EOS needs the model's eos_id (pass --model-args eos_id=N, or --no-score-eos)")
        tokens.append(m.eos_id)
    return tokens, start, len(head)


def corpus_loss(lm, unit_seqs: Sequence[Sequence[int]], *, context_len: int = 1,
                score_eos: bool | Sequence[bool] = False, ids: Sequence[str] | None = None,
                average: str = "token", batch_size: int = 8, progress: bool = True) -> LossResult:
    """NLL over all sequences, both averages; `score_eos` for all sequences or one flag per sequence."""
    from slmeval.scoring.batch import sequence_logprobs

    if average not in AVERAGES:
        raise LossInputError(f"average {average!r}: expected one of {', '.join(AVERAGES)}")
    n_seq = len(unit_seqs)
    if not n_seq:
        raise LossInputError("nothing to score: the held-out set holds no sequences")
    ids = [str(i) for i in range(n_seq)] if ids is None else list(ids)
    eos_flags = [bool(score_eos)] * n_seq if isinstance(score_eos, bool) else [bool(f) for f in score_eos]
    if len(ids) != n_seq or len(eos_flags) != n_seq:
        raise ValueError("ids and score_eos flags must match the sequences one to one")
    window = lm.max_length
    windows_tokens: list[list[int]] = []
    n_pred: list[int] = []
    owner: list[int] = []
    start = "none"
    for k, units in enumerate(unit_seqs):
        try:
            tokens, start, n_head = sequence_tokens(units, lm, score_eos=eos_flags[k])
        except LossInputError as err:
            raise LossInputError(f"{ids[k]}: {err}") from None
        spans = rolling_windows(len(tokens), window or max(len(tokens) - 1, 1), context_len)
        for s, e, n in spans:
            # Predictions of prefix tokens are not the model's loss on speech: only tokens from n_head count.
            n = e - max(e - n, n_head, 1) if e > n_head else 0
            if n:
                windows_tokens.append(tokens[s:e])
                n_pred.append(n)
                owner.append(k)
    empty = sorted(set(range(n_seq)) - set(owner))
    if empty:   # no prediction: no mean NLL for the utterance average (slm_scaling stops too)
        raise LossInputError(f"{len(empty)} sequence(s) have nothing to predict (no unit, or a single unit and no "
                             f"start token): {', '.join(ids[i] for i in empty[:5])}")
    per_window = sequence_logprobs(lm, windows_tokens, batch_size=batch_size, progress=progress,
                                   description="test loss")
    sums = np.zeros(n_seq, dtype=np.float64)
    counts = np.zeros(n_seq, dtype=np.int64)
    wins = np.zeros(n_seq, dtype=np.int64)
    for lp, n, k in zip(per_window, n_pred, owner):
        sums[k] -= float(np.asarray(lp, dtype=np.float64)[len(lp) - n:].sum())
        counts[k] += n
        wins[k] += 1
    total, count = float(sums.sum()), int(counts.sum())
    if not math.isfinite(total):
        bad = [ids[i] for i in np.flatnonzero(~np.isfinite(sums))[:5]]
        raise LossInputError(f"the summed NLL is {total} (non-finite model output on {', '.join(bad)}; "
                             "try --dtype float32)")
    means = sums / counts
    token_w, utt_w = total / count, float(means.mean())
    rows = [{"id": ids[k], "nll": float(means[k]), "nll_sum": float(sums[k]), "n_tokens": int(counts[k]),
             "eos_scored": eos_flags[k], "n_windows": int(wins[k])} for k in range(n_seq)]
    mode = "all" if all(eos_flags) else "none" if not any(eos_flags) else "data"
    return LossResult(loss=token_w if average == "token" else utt_w, average=average, loss_token_weighted=token_w,
                      loss_utterance_weighted=utt_w, n_tokens=count, n_sequences=n_seq,
                      n_windows=len(windows_tokens), total_nll=total, window=window, context_len=context_len,
                      start_token=start, score_eos=mode, n_eos_scored=sum(eos_flags),
                      prefix_ids=list(lm.mapping.prefix_ids), per_utterance=rows)


@dataclass
class HeldOut:
    """Held-out sequences with their ids; `ended_with_eos` when the data stores a terminal EOS
    (slm_scaling shards), else None."""

    ids: list[str]
    units: list[list[int]]
    ended_with_eos: list[bool] | None = None
    notes: list[str] = field(default_factory=list)
    tokenizer: dict | None = None      # how the data was encoded, when it says (a shard's meta.json preprocessing)

    def score_eos(self, flag: bool | None) -> bool | list[bool]:
        """--score-eos / --no-score-eos, or by default the data's own: its stored EOS is scored, as
        slm_scaling's `--task loss` scores it; data without EOS scores none."""
        if flag is not None:
            return flag
        return list(self.ended_with_eos) if self.ended_with_eos is not None else False


def read_units_jsonl(path: Path) -> HeldOut:
    """One JSON object per line with a "units" list of non-negative ints and an optional "id" (string or
    integer; default "line N"); other keys ignored."""
    ids, seqs = [], []
    first: dict[str, int] = {}
    with open(path) as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                units = rec["units"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise LossInputError(f"{path}:{i}: expected a JSON object with a 'units' list ({exc})") from exc
            if not isinstance(units, list) or not all(isinstance(u, int) and not isinstance(u, bool) and u >= 0
                                                      for u in units):
                raise LossInputError(f"{path}:{i}: 'units' must be a list of non-negative integers")
            rid = rec.get("id", f"line {i}")
            if not isinstance(rid, (str, int)) or isinstance(rid, bool) or str(rid) == "":
                raise LossInputError(f"{path}:{i}: 'id' must be a non-empty string or an integer, got {json.dumps(rid)}")
            if str(rid) in first:
                raise LossInputError(f"{path}:{i}: duplicate id {str(rid)!r} (first on line {first[str(rid)]})")
            first[str(rid)] = i
            ids.append(str(rid))
            seqs.append(units)
    if not seqs:
        raise LossInputError(f"{path}: no sequences")
    return HeldOut(ids, seqs)


def read_packed_held_out(data: Path, *, verify_checksums: bool = True) -> HeldOut:
    """slm_scaling packed shard(s) (slmeval/data/slm_scaling_shards.py): units with their stored EOS."""
    from slmeval.data import DataLayoutError, read_packed_units

    try:
        packed = read_packed_units(data, verify_checksums=verify_checksums)
    except DataLayoutError as err:
        raise LossInputError(str(err)) from None
    notes = [f"{data}: {packed.n_skipped} record(s) the encoder could not encode are not in the shard(s) "
             "(skips.jsonl)"] if packed.n_skipped else []
    return HeldOut(packed.ids, packed.units, packed.ended_with_eos, notes, packed.tokenizer)


def load_held_out(data: Path, *, tokenizer, cache_dir: Path | None, use_cache: bool,
                  allow_pickle: bool = False, progress: bool = True, verify_checksums: bool = True) -> HeldOut:
    """Units of the held-out set: a units JSONL, slm_scaling packed shard(s) (a folder holding
    meta.json, or shard folders that do), or a folder of audio tokenised through the units layer
    (`tokenizer`: a spec string or an already loaded UnitTokenizer)."""
    data = Path(data)
    if data.is_file():
        return read_units_jsonl(data)
    if not data.is_dir():
        raise LossInputError(f"{data}: neither a units JSONL file, an slm_scaling shard nor a folder of audio")
    if (data / "meta.json").is_file() or any((p / "meta.json").is_file() for p in data.iterdir() if p.is_dir()):
        return read_packed_held_out(data, verify_checksums=verify_checksums)
    files = sorted(p for p in data.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise LossInputError(f"{data}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) and no slm_scaling "
                             "shard (meta.json)")
    if tokenizer is None:
        raise LossInputError(f"{data}: audio input needs --tokenizer (a folder with tokenizer.json or 'kind:k=v,...')")
    from slmeval.units import UnitCache, default_cache_dir, load_tokenizer, tokenize_sources

    tok = load_tokenizer(tokenizer, allow_pickle=allow_pickle) if isinstance(tokenizer, str) else tokenizer
    cache = UnitCache(cache_dir or default_cache_dir(), tok.identity) if use_cache else None
    units, _ = tokenize_sources(list(files), [str(f) for f in files], tok, cache, progress=progress)
    return HeldOut([str(f.relative_to(data)) for f in files], [u.tolist() for u in units])


def write_per_utterance(path: Path, result: LossResult) -> None:
    """One JSON line per utterance: id, mean NLL (slm_scaling's per-row `nll`), summed NLL, scored
    tokens, whether its EOS was scored, windows — written atomically."""
    from slmeval.io import write_jsonl

    write_jsonl(path, result.per_utterance)


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
