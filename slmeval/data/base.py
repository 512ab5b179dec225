"""The unit of every task: a likelihood pair (positive vs negative utterance), and the registry of
readers that turn a published layout into pairs."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

from slmeval.plugins import Registry


class DataLayoutError(ValueError):
    """Task data that does not match its declared layout. The message says where we looked and
    what was expected there."""


@dataclass(frozen=True, eq=False, slots=True)   # slots: no __dict__ per utterance (a task holds 200,000)
class Utterance:
    """One side of a pair: audio (a file or encoded bytes) or, for pre-tokenised sources, units."""

    key: str                                   # file stem, or "<pair id>/positive"
    audio: Union[Path, bytes, None] = None
    # Pre-tokenised units: a sequence of non-negative ints — a tuple / list from any reader, or (the built-in
    # readers) a read-only 1-D int64 numpy array, ~8 bytes a unit instead of a Python int object each.
    units: Sequence[int] | None = None

    @property
    def file(self) -> str | None:
        return str(self.audio) if isinstance(self.audio, Path) else None

    # Equal (and hashed) by value, whatever holds the units: an int64 array equals the tuple of the same ints,
    # as a dataclass's field-wise == could not say of an array (its == is elementwise).
    def _fields(self) -> tuple:
        units = self.units
        return self.key, self.audio, None if units is None else tuple(map(int, units))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()   # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._fields())


def max_unit(units: Sequence[int]) -> int:
    """The largest unit of a sequence (-1 when empty): one C call for an array, `max` for a tuple / list."""
    if isinstance(units, np.ndarray):
        return int(units.max()) if units.size else -1
    return max(units, default=-1)


def max_unit_of(utterances: Sequence[Utterance]) -> int:
    """The largest pre-tokenised unit of any of these utterances (-1 when none): one concatenate when
    they all hold arrays (the built-in readers), `max_unit` one by one otherwise."""
    held = [u.units for u in utterances if u.units is not None]
    if held and all(type(x) is np.ndarray for x in held):
        flat = np.concatenate(held)
        return int(flat.max()) if flat.size else -1
    return max(map(max_unit, held), default=-1)


@dataclass(frozen=True, slots=True)
class Pair:
    id: str                                    # unique within the task
    positive: Utterance
    negative: Utterance
    meta: dict = field(default_factory=dict, hash=False, compare=False)


# A reader is `fn(path: Path, **options) -> list[Pair]`; the first line of its docstring is the layout
# it expects (shown by `slmeval tasks` and `slmeval plugins readers`). Other packages add readers
# through the `slmeval.readers` entry-point group (docs/plugins.md).
READERS: Registry[Callable[..., list[Pair]]] = Registry("reader", group="slmeval.readers", package="slmeval.data")
