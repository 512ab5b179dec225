"""A model's identity: every file that defines its behaviour — config, weights and tokenizer files.

Editing config.json (offset, rope_theta, ...) changes scores, so it changes the hash too. The hash is
sha256 over sorted `name\\tsha256(content)` lines; results.json records it together with each file's
own hash, so two runs can be compared file by file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from slmeval.io import sha256_bytes, sha256_file

# Files beside the weights that change what the model computes or how text/units become tokens.
BEHAVIOUR_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                   "tokenizer.model", "special_tokens_map.json", "added_tokens.json", "vocab.json", "vocab.txt",
                   "merges.txt")


def behaviour_files(directory: Path, weight_files: Iterable[Path]) -> list[Path]:
    extra = [directory / name for name in BEHAVIOUR_FILES if (directory / name).is_file()]
    # remote code (config.json `auto_map`, trust_remote_code=true) is the model's forward itself
    extra += [p for p in directory.glob("*.py") if p.is_file()]
    return sorted(set(extra) | set(weight_files), key=lambda p: p.name)


def file_hashes(files: Iterable[Path], root: Path) -> dict[str, str]:
    """name (relative to the checkpoint folder) → sha256 of its content (symlinks into a Hub cache followed)."""
    return {str(p.relative_to(root)) if p.is_relative_to(root) else p.name: sha256_file(p.resolve())
            for p in files}


def model_sha256(hashes: dict[str, str]) -> str:
    return sha256_bytes("".join(f"{name}\t{digest}\n" for name, digest in sorted(hashes.items())).encode())
