"""slmeval: evaluation harness and scaling-law toolkit for speech language models."""
from __future__ import annotations

__version__ = "0.1.0"


def evaluate(*args, **kwargs):
    """Run tasks on a model and return the results dict (see `slmeval.evaluator.evaluate`)."""
    from slmeval.evaluator import evaluate as _evaluate   # lazy: `import slmeval` stays light

    return _evaluate(*args, **kwargs)


__all__ = ["__version__", "evaluate"]
