"""Train the demo SLM: a small HF Llama over log-mel units of espeak-ng speech, on 2 CPU cores.

The model card is this file plus `slmeval.demo.items` (the text generator, its seeds and voices):
`python -m slmeval.demo.build_assets --only model` rebuilds `audio_assets/demo_model/` from scratch.

Token ids follow the TWIST convention recorded in config.json: 0 = pad, 1 = BOS, 2 = EOS and
unit u -> token u + 3 (`offset`). Every training utterance is [BOS] + units + [EOS]; utterances are
packed back to back into fixed-length rows (no padding to waste CPU time on).
"""
from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

PAD_ID, BOS_ID, EOS_ID, OFFSET = 0, 1, 2, 3


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    hidden_size: int = 160
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 480
    context: int = 256              # packed row length; a mini story is ~110 units, a sentence ~45
    max_position_embeddings: int = 512
    batch_rows: int = 16
    steps: int = 1500
    lr: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 0.1
    validation_fraction: float = 0.02
    # One thread: on a shared 2-core machine two OpenMP threads spin against each other (measured 10x
    # slower per step here), and a single thread makes the float reductions identical on every machine.
    threads: int = 1


def sequences_to_tokens(units: Sequence[np.ndarray]) -> list[np.ndarray]:
    """[BOS] + (units + OFFSET) + [EOS] for every utterance."""
    return [np.concatenate([[BOS_ID], np.asarray(u, dtype=np.int64) + OFFSET, [EOS_ID]]) for u in units]


def pack(token_seqs: Sequence[np.ndarray], context: int) -> torch.Tensor:
    """Concatenate and cut into rows of `context` tokens (the ragged tail is dropped)."""
    flat = np.concatenate(list(token_seqs))
    rows = flat.size // context
    if rows == 0:
        raise ValueError(f"corpus of {flat.size} tokens is shorter than one row of {context}")
    return torch.from_numpy(flat[: rows * context].reshape(rows, context).copy())


def build_model(n_units: int, cfg: TrainConfig):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=n_units + OFFSET, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_position_embeddings, tie_word_embeddings=True,
        pad_token_id=PAD_ID, bos_token_id=BOS_ID, eos_token_id=EOS_ID)
    config.offset = OFFSET          # TWIST convention: token = unit + offset (read by slmeval.models)
    torch.manual_seed(cfg.seed)
    return LlamaForCausalLM(config)


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def _loss(model, rows: torch.Tensor, batch: int = 32) -> float:
    model.eval()
    total, count = 0.0, 0
    for i in range(0, rows.shape[0], batch):
        chunk = rows[i:i + batch]
        out = model(input_ids=chunk, labels=chunk)
        n = chunk.numel() - chunk.shape[0]
        total += float(out.loss) * n
        count += n
    model.train()
    return total / max(1, count)


def train(units: Sequence[np.ndarray], n_units: int, cfg: TrainConfig = TrainConfig(), *,
          progress: bool = True):
    """Train from scratch; returns (model, report dict). Deterministic for a given cfg and corpus."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(units, n_units, cfg, progress)
    finally:
        torch.set_num_threads(previous_threads)   # do not leave the caller's process single-threaded


def _train(units: Sequence[np.ndarray], n_units: int, cfg: TrainConfig, progress: bool):
    from rich.progress import Progress

    rng = np.random.default_rng(cfg.seed)
    tokens = sequences_to_tokens(units)
    order = rng.permutation(len(tokens))
    n_val = max(1, int(len(tokens) * cfg.validation_fraction))
    val_rows = pack([tokens[i] for i in order[:n_val]], cfg.context)
    train_rows = pack([tokens[i] for i in order[n_val:]], cfg.context)

    model = build_model(n_units, cfg)
    decay = [p for p in model.parameters() if p.ndim >= 2]        # matrices decay, norms do not
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98))
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    start = time.perf_counter()
    losses = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("training demo SLM", total=cfg.steps)
        for step in range(cfg.steps):
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, cfg)
            batch = train_rows[torch.randint(train_rows.shape[0], (cfg.batch_rows,), generator=gen)]
            loss = model(input_ids=batch, labels=batch).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
            if step % 100 == 0 or step == cfg.steps - 1:
                log.info("step %d  loss %.3f  (%.0f s)", step, float(np.mean(losses[-100:])),
                         time.perf_counter() - start)
            bar.advance(task)
    model.eval()
    report = {
        "config": asdict(cfg),
        "n_utterances": len(tokens),
        "train_tokens": int(train_rows.numel()),
        "train_epochs": round(cfg.steps * cfg.batch_rows * cfg.context / train_rows.numel(), 2),
        "final_train_loss": round(float(np.mean(losses[-100:])), 4),
        "validation_loss": round(_loss(model, val_rows), 4),
        "train_seconds": round(time.perf_counter() - start, 1),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
    }
    return model, report


def save_model(model, report: dict, out_dir: str | Path) -> Path:
    """save_pretrained into a temp folder next to `out_dir`, then swap it in (never half-written)."""
    import shutil

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        (tmp / "training.json").write_text(json.dumps(report, indent=2) + "\n")
        # mkdtemp makes a private (0700) folder; the shipped model must be readable by everyone.
        tmp.chmod(0o755)
        for f in tmp.iterdir():
            f.chmod(0o644)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def train_demo_model(units: Sequence[np.ndarray], n_units: int, out_dir: str | Path,
                     cfg: TrainConfig = TrainConfig(), *, progress: bool = True) -> Path:
    model, report = train(units, n_units, cfg, progress=progress)
    log.info("demo model: %s", json.dumps(report))
    return save_model(model, report, out_dir)
