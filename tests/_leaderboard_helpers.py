"""Realistic slmeval run outputs (results.json + samples_<task>.jsonl, as documented in
docs/architecture.md) for the leaderboard and check tests, built from per-item correctness lists.

They are consistent the way a real run is: scores are mean log-probs, `correct` follows from the two
scores under the recorded (real) protocol, and the metrics are computed from the samples by the
task's real metric family — so the leaderboard and check accept them, and a test that edits one
number sees it refused."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from slmeval.task_loader.registry import Grouping, all_tasks
from slmeval.scoring import PRESETS
from slmeval.results.verify import metrics_from_samples

SBLIMP_LIKE = {"mini_sblimp", "sblimp", "sblimp_test"}     # tasks whose keys look like sBLIMP file stems
PROTOCOL = PRESETS["slmeval"].to_dict()
TOKENIZER = {"kind": "logmel", "n_units": 64, "n_mels": 40, "dedup": True, "sample_rate": 16000,
             "centroids_sha256": "3f" * 32}


def item_keys(task: str, index: int) -> tuple[str, str, str]:
    if task in SBLIMP_LIKE:
        return f"{index:06d}", f"{index:06d}_good_voice{index % 4}", f"{index:06d}_bad_voice{index % 4}"
    return f"story{index:04d}", f"story{index:04d}/positive", f"story{index:04d}/negative"


def task_samples(task: str, correct: list[float], seed: int = 0) -> list[dict]:
    """One samples line per item; log-probs are drawn so that the comparison agrees with `correct`."""
    rng = np.random.default_rng(seed)
    lines = []
    for index, value in enumerate(correct):
        item_id, pos_key, neg_key = item_keys(task, index)
        base = float(rng.normal(-3.0, 0.3))
        gap = float(rng.uniform(0.01, 0.4))
        pos = base + gap if value == 1.0 else base - gap if value == 0.0 else base
        n_pos, n_neg = int(rng.integers(20, 80)), int(rng.integers(20, 80))
        lines.append({"id": item_id, "positive_key": pos_key, "negative_key": neg_key,
                      "positive_file": f"{pos_key}.wav", "negative_file": f"{neg_key}.wav",
                      "positive_logprob": pos * n_pos, "negative_logprob": base * n_neg,
                      "positive_n": n_pos, "negative_n": n_neg, "positive_score": pos, "negative_score": base,
                      "correct": value, "meta": _meta(task, index)})
    return lines


def _meta(task: str, index: int) -> dict:
    """What the task's reader would put in `meta` (sBLIMP: phenomenon, item, voice; StoryCloze: story,
    and the voice folder for multi-speaker variants)."""
    if task in SBLIMP_LIKE:
        return {"type": f"type{index % 3}", "subtype": f"sub{index % 2}", "item": str(index // 4),
                "voice": f"voice{index % 4}"}
    return {"story": f"story{index:04d}", "speaker": f"voice{index % 4}" if "_ms_" in task else None}


def items_hash(lines: list[dict]) -> str:
    text = "".join(sorted(f"{s['id']}\t{s['positive_key']}\t{s['negative_key']}\n" for s in lines))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def meta_hash(lines: list[dict]) -> str:
    text = "".join(sorted(f"{s['id']}\t{json.dumps(s['meta'], sort_keys=True)}\n" for s in lines))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def results_document(per_task: dict[str, list[dict]], *, model: str, model_sha256: str,
                     data_tag: str = "official-audio", versions: dict[str, int] | None = None) -> dict:
    results, configs, hashes = {}, {}, {}
    breakdowns = {}
    for task, lines in per_task.items():
        registered = all_tasks().get(task)    # the config evaluate() writes, from the real task file
        configs[task] = ({**registered.to_dict(), "headline": registered.headline} if registered else
                         {"name": task, "family": "pairs", "source": "units_jsonl", "path": f"{task}.jsonl"})
        results[task], breakdown = metrics_from_samples(configs[task]["family"],
                                                        registered.grouping if registered else Grouping(), lines)
        if breakdown:
            breakdowns[task] = breakdown
        hashes[task] = {"items_sha256": items_hash(lines), "meta_sha256": meta_hash(lines),
                        "data_sha256": hashlib.sha256(f"{data_tag}:{task}".encode()).hexdigest()}
    return {
        "results": results, "breakdowns": breakdowns,
        "configs": configs, "versions": {t: (versions or {}).get(t, 1) for t in per_task},
        "n_samples": {t: len(v) for t, v in per_task.items()},
        "config": {"model": model, "model_args": {"dtype": "float32"}, "model_sha256": model_sha256,
                   "unit_mapping": {"offset": 4, "bos_id": 1, "eos_id": 2, "pad_id": 0},
                   "tokenizer": TOKENIZER, "protocol": PROTOCOL, "batch_size": 8, "device": "cpu",
                   "dtype": "float32", "logprob_backend": "torch"},
        "provenance": {"slmeval_version": "0.1.0", "git_sha": "b345d05" + "0" * 33, "date": "2025-06-01T12:00:00Z",
                       "model_sha256": model_sha256, "task_hashes": hashes},
    }


def write_run(out_dir: Path, correct_by_task: dict[str, list[float]], *, model: str = "ckpt/slm-tiny",
              model_sha256: str | None = None, data_tag: str = "official-audio", seed: int = 0,
              edit_meta=None) -> Path:
    """Write results.json + samples files into out_dir and return out_dir; `edit_meta(task, index, meta)`
    relabels items before the metrics and hashes are computed (a consistent, relabelled run)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    per_task = {t: task_samples(t, c, seed=seed + i) for i, (t, c) in enumerate(correct_by_task.items())}
    for task, lines in per_task.items():
        for index, line in enumerate(lines):
            if edit_meta is not None:
                edit_meta(task, index, line["meta"])
    for task, lines in per_task.items():
        (out_dir / f"samples_{task}.jsonl").write_text("".join(json.dumps(s) + "\n" for s in lines))
    document = results_document(per_task, model=model, data_tag=data_tag,
                                model_sha256=model_sha256 or hashlib.sha256(model.encode()).hexdigest())
    (out_dir / "results.json").write_text(json.dumps(document, indent=2))
    return out_dir


def correctness(n: int, accuracy: float, seed: int, tie_rate: float = 0.0) -> list[float]:
    """A reproducible per-item correctness list with about the given accuracy and tie rate."""
    rng = np.random.default_rng(seed)
    draws = rng.random(n)
    return [0.5 if d < tie_rate else 1.0 if d < tie_rate + accuracy * (1 - tie_rate) else 0.0 for d in draws]
