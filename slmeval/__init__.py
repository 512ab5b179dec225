"""slmeval: evaluation harness and scaling-law toolkit for speech language models."""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "evaluate"]


def __getattr__(name: str) -> Any:
    # `slmeval.evaluate` IS `slmeval.evaluator.evaluate` (its own signature, docstring and help()),
    # imported on first use so that `import slmeval` stays light (no torch, no transformers).
    if name == "evaluate":
        from slmeval.evaluator import evaluate

        globals()["evaluate"] = evaluate
        return evaluate
    raise AttributeError(f"module 'slmeval' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"evaluate"})
