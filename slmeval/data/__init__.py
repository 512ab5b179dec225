"""Readers for the published task layouts; each returns a list of `Pair`."""
from __future__ import annotations

from slmeval.data.base import DataLayoutError, Pair, Utterance

__all__ = ["DataLayoutError", "Pair", "Utterance"]
