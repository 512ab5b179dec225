"""slmeval: evaluation harness and scaling-law toolkit for speech language models."""
from __future__ import annotations

__version__ = "0.1.0"
