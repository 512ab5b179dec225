"""Readers for the published task layouts; each returns a list of `Pair`.

`read_pairs(source, path, **options)` is the single entry point the task registry uses; `source`
names the layout explicitly (never guessed from the files).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from slmeval.data.base import DataLayoutError, Pair, Utterance
from slmeval.data.hf import read_hf_pairs
from slmeval.data.paired import read_paired_folder
from slmeval.data.storycloze import read_storycloze
from slmeval.data.units_jsonl import read_units_jsonl
from slmeval.data.zerospeech import read_sblimp

READERS: dict[str, Callable[..., list[Pair]]] = {
    "zerospeech_sblimp": read_sblimp,       # <root>/syntactic/<split>/{*.wav, gold.csv}
    "storycloze": read_storycloze,          # <k>_<story>_correct.wav / <k+1>_<story>_incorrect.wav
    "paired_folder": read_paired_folder,    # <int><sep><rest>.wav, 2i positive / 2i+1 negative
    "hf_pairs": read_hf_pairs,              # parquet / save_to_disk with audio structs
    "units_jsonl": read_units_jsonl,        # {"id", "positive": [units], "negative": [units]}
}


def reader_options(source: str) -> list[str]:
    """The keyword options a reader takes besides the path (for error messages and task configs)."""
    params = list(inspect.signature(READERS[source]).parameters.values())[1:]
    return [p.name for p in params]


def read_pairs(source: str, path: str | Path, **options) -> list[Pair]:
    if source not in READERS:
        raise DataLayoutError(f"unknown data source {source!r}; known sources: {', '.join(READERS)}")
    reader = READERS[source]
    signature = inspect.signature(reader)
    allowed = reader_options(source)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DataLayoutError(f"source {source!r} does not take option(s) {', '.join(unknown)}; "
                              f"it takes: {', '.join(allowed) or 'none'}")
    required = [p.name for p in list(signature.parameters.values())[1:]
                if p.default is inspect.Parameter.empty and p.name not in options]
    if required:
        raise DataLayoutError(f"source {source!r} needs option(s) {', '.join(required)}")
    return reader(Path(path), **options)


__all__ = ["DataLayoutError", "Pair", "Utterance", "READERS", "read_pairs", "reader_options",
           "read_sblimp", "read_storycloze", "read_paired_folder", "read_hf_pairs", "read_units_jsonl"]
