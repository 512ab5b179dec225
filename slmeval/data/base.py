"""The unit of every task: a likelihood pair (positive vs negative utterance), and the registry of
readers that turn a published layout into pairs."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from slmeval.plugins import Registry


class DataLayoutError(ValueError):
    """Task data that does not match its declared layout. The message says where we looked and
    what was expected there."""


@dataclass(frozen=True)
class Utterance:
    """One side of a pair: audio (a file or encoded bytes) or, for pre-tokenised sources, units."""

    key: str                                   # file stem, or "<pair id>/positive"
    audio: Union[Path, bytes, None] = None
    units: tuple[int, ...] | None = None

    @property
    def file(self) -> str | None:
        return str(self.audio) if isinstance(self.audio, Path) else None


@dataclass(frozen=True)
class Pair:
    id: str                                    # unique within the task
    positive: Utterance
    negative: Utterance
    meta: dict = field(default_factory=dict, hash=False, compare=False)


# A reader is `fn(path: Path, **options) -> list[Pair]`; the first line of its docstring is the layout
# it expects (shown by `slmeval tasks` and `slmeval plugins readers`). Other packages add readers
# through the `slmeval.readers` entry-point group (docs/plugins.md).
READERS: Registry[Callable[..., list[Pair]]] = Registry("reader", group="slmeval.readers", builtins=(
    "slmeval.data.zerospeech", "slmeval.data.storycloze", "slmeval.data.paired", "slmeval.data.hf",
    "slmeval.data.units_jsonl", "slmeval.data.salmon", "slmeval.data.slm_scaling_shards", "slmeval.data.webdataset"))
