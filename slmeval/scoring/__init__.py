"""Scoring layer: protocols, batched sequence log-likelihoods and the single log-prob function.

Names are imported on first use (PEP 562): the protocol presets (`slmeval.scoring.protocol`, no torch)
are read by the CLI's `--protocol` help without importing torch."""
from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    **dict.fromkeys(("ScoreColumns", "SequenceScore", "distinct_sequences", "score_columns", "score_sequences",
                     "sequence_logprobs"), "slmeval.scoring.batch"),
    **dict.fromkeys(("ScoringError", "TokenTable", "build_tokens", "check_protocol", "table_tokens", "token_arrays"),
                    "slmeval.scoring.tokens"),
    **dict.fromkeys(("target_logprobs", "torch_target_logprobs"), "slmeval.scoring.logprobs"),
    **dict.fromkeys(("PRESETS", "Protocol", "ProtocolError", "get_protocol"), "slmeval.scoring.protocol"),
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'slmeval.scoring' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value         # later lookups skip this function
    return value
