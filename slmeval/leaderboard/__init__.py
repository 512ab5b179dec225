"""Leaderboard: accepted slmeval submissions next to numbers reported in papers, rendered as a static site."""
from __future__ import annotations

from slmeval.leaderboard.store import Board, SubmissionError, add_submission, data_status, pin_hashes, validate_results

__all__ = ["Board", "SubmissionError", "add_submission", "data_status", "pin_hashes", "validate_results"]
