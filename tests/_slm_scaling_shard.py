"""Write a packed shard exactly as slm_scaling's `ShardWriter` does (tiagoCuervo/slm_scaling,
src/slm_data/packing.py): codes appended to audio.bin as int16 `tofile`, one int64 length per sample to
audio.len, samples.jsonl rows `{**metadata, "id", "audio_steps"}` with sorted keys, skips.jsonl, and
meta.json (schema_version 2, counts, preprocessing, sha256 of each file, sorted keys, indent 2).
Written here from that code's rules, independently of slmeval's reader."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np


def write_shard(folder: Path, samples: list[tuple[str, list[int], dict]], *, eos: int, skips: int = 0,
                preprocessing: dict | None = None) -> Path:
    """samples: (id, codes ending in EOS as stored, metadata). EOS = K, PAD = K + 1, vocab = K + 2;
    `preprocessing` adds to (or overrides) meta.json's preprocessing."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "audio.bin", "wb") as b, open(folder / "audio.len", "wb") as ln, \
            open(folder / "samples.jsonl", "w") as s:
        for sid, codes, metadata in samples:
            np.asarray(codes, dtype=np.int16).tofile(b)
            np.asarray([len(codes)], dtype=np.int64).tofile(ln)
            s.write(json.dumps({**metadata, "id": sid, "audio_steps": len(codes)}, ensure_ascii=False,
                               sort_keys=True) + "\n")
    (folder / "skips.jsonl").write_text("".join(json.dumps({"detail": "", "id": f"skipped{i}", "reason": "ValueError"},
                                                           sort_keys=True) + "\n" for i in range(skips)))
    files = ["audio.bin", "audio.len", "samples.jsonl", "skips.jsonl"]
    meta = {"schema_version": 2, "num_samples": len(samples), "num_audio_steps": sum(len(c) for _, c, _ in samples),
            "num_skipped": skips, "keep_audio": False,
            "preprocessing": {"eos_token": eos, "pad_token": eos + 1, "vocab_size": eos + 2, "sample_rate": 16000,
                              **(preprocessing or {})},
            "checksums": {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in files}}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return folder
