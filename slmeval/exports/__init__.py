"""Exports of a finished run (`--export NAME`): the `EXPORTS` registry (`base.py`) and the complete
ZeroSpeech 2021 sLM21 submission (`zerospeech.py`)."""
from __future__ import annotations

from slmeval.exports.base import EXPORTS

__all__ = ["EXPORTS"]
