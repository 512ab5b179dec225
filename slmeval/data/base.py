"""The unit of every task: a likelihood pair (positive vs negative utterance)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union


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
