"""Scoring layer: protocols, batched sequence log-likelihoods and the single log-prob function."""
from __future__ import annotations

from slmeval.scoring.batch import (ScoringError, SequenceScore, build_tokens, check_protocol, distinct_sequences,
                                   score_sequences, sequence_logprobs)
from slmeval.scoring.logprobs import target_logprobs, torch_target_logprobs
from slmeval.scoring.protocol import PRESETS, Protocol, ProtocolError, get_protocol

__all__ = ["PRESETS", "Protocol", "ProtocolError", "ScoringError", "SequenceScore", "build_tokens", "check_protocol",
           "distinct_sequences", "get_protocol", "score_sequences", "sequence_logprobs", "target_logprobs", "torch_target_logprobs"]
