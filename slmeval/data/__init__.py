"""Readers for the published task layouts; each returns a list of `Pair`.

`read_pairs(source, path, **options)` is the single entry point the task registry uses; `source`
names the layout explicitly (never guessed from the files). Readers live in `READERS`
(`slmeval.plugins.Registry`, entry-point group `slmeval.readers`): each registers in the module that
defines it and the registry imports the modules of this package on first use, so importing
slmeval.data imports no reader (the `read_*` names below are loaded when first asked for).
"""
from __future__ import annotations

import gc
import importlib
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from slmeval.data.base import READERS, DataLayoutError, Pair, Utterance
from slmeval.plugins import PluginError

# public reader functions -> their module, imported on first access (PEP 562)
_LAZY = {"read_hf_pairs": "hf", "read_paired_folder": "paired", "read_storycloze": "storycloze",
         "read_packed_units": "slm_scaling_shards", "read_slm_scaling_shard": "slm_scaling_shards",
         "read_units_jsonl": "units_jsonl", "read_lexical_webdataset": "webdataset",
         "read_sblimp_webdataset": "webdataset", "read_webdataset_pairs": "webdataset",
         "read_zerospeech_sblimp": "zerospeech", "read_zerospeech_lexical": "zerospeech", "read_salmon": "salmon",
         "read_sblimp": "zerospeech", "read_swuggy": "zerospeech"}   # the last two: aliases, the names before issue 24


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic collector off while a reader builds a task's pairs. They hold no cycles, but each
    700 new dicts / pairs set a collection off, which in a process that holds torch's and a model's objects
    cost as much as the reading (25 vs 12 µs a pair for 20,000 pre-tokenised pairs). Restored after, as found."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_pairs(source: str, path: str | Path, **options) -> list[Pair]:
    check_reader_options(source, options)
    with gc_paused():
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
           "read_sblimp_webdataset", "read_webdataset_pairs", "read_swuggy", "read_salmon", "read_zerospeech_sblimp",
           "read_zerospeech_lexical"]
