"""Readers for the published task layouts; each returns a list of `Pair`.

`read_pairs(source, path, **options)` is the single entry point the task registry uses; `source`
names the layout explicitly (never guessed from the files). Readers live in `READERS`
(`slmeval.plugins.Registry`, entry-point group `slmeval.readers`).
"""
from __future__ import annotations

import inspect
from pathlib import Path

from slmeval.data.base import READERS, DataLayoutError, Pair, Utterance
from slmeval.data.hf import read_hf_pairs
from slmeval.data.paired import read_paired_folder
from slmeval.data.storycloze import read_storycloze
from slmeval.data.slm_scaling_shards import read_packed_units, read_slm_scaling_shard
from slmeval.data.units_jsonl import read_units_jsonl
from slmeval.data.webdataset import read_lexical_webdataset, read_sblimp_webdataset, read_webdataset_pairs
from slmeval.data.zerospeech import read_sblimp
from slmeval.plugins import PluginError


def _reader(source: str):
    try:
        return READERS.get(source)
    except PluginError as err:
        raise DataLayoutError(str(err)) from None


def reader_options(source: str) -> list[str]:
    """The keyword options a reader takes besides the path (for error messages and task configs)."""
    params = list(inspect.signature(_reader(source)).parameters.values())[1:]
    return [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def check_reader_options(source: str, options: dict) -> None:
    """Unknown or missing reader options → DataLayoutError naming what the reader takes."""
    reader = _reader(source)
    params = list(inspect.signature(reader).parameters.values())[1:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    allowed = reader_options(source)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DataLayoutError(f"source {source!r} does not take option(s) {', '.join(unknown)}; "
                              f"it takes: {', '.join(allowed) or 'none'}")
    required = [p.name for p in params if p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in options]
    if required:
        raise DataLayoutError(f"source {source!r} needs option(s) {', '.join(required)}")


def read_pairs(source: str, path: str | Path, **options) -> list[Pair]:
    check_reader_options(source, options)
    pairs = READERS.call(source, Path(path), **options, shape="fn(path: Path, **options) -> list[Pair]",
                         passthrough=(DataLayoutError, OSError))
    if not isinstance(pairs, list) or not all(isinstance(p, Pair) for p in pairs):
        got = type(pairs).__name__ if not isinstance(pairs, list) else \
            f"a list holding a {type(next(p for p in pairs if not isinstance(p, Pair))).__name__}"
        raise DataLayoutError(f"reader {source!r} ({READERS.origin(source)}) returned {got}; "
                              f"a reader returns a list of slmeval.data.Pair")
    return pairs


__all__ = ["DataLayoutError", "Pair", "Utterance", "READERS", "read_pairs", "reader_options",
           "check_reader_options", "read_sblimp", "read_storycloze", "read_paired_folder", "read_hf_pairs",
           "read_units_jsonl", "read_slm_scaling_shard", "read_packed_units", "read_lexical_webdataset",
           "read_sblimp_webdataset", "read_webdataset_pairs"]
