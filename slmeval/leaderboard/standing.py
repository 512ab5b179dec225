"""How far a run is trusted, in one phrase `slmeval check` prints for each of its two runs.

Every run `check` accepts is *consistent* (its numbers follow from its samples: check refuses any other).
It is *reproduced* only when a board's ledger records that the board re-ran the model and every per-item
credit matched, for a results.json byte for byte this one (its sha256).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from slmeval.leaderboard.ledger import Ledger, LedgerError


def standing(results_path: Path, board: Path | None) -> str:
    if board is None:
        return "consistent (its numbers follow from its samples); not looked up on a board (--board), so not reproduced"
    if not board.is_dir():
        raise ValueError(f"--board {board}: not a leaderboard folder")
    try:
        ledger = Ledger.read(board)
    except LedgerError as exc:
        raise ValueError(f"--board {board}: {exc}") from None
    digest = hashlib.sha256(results_path.read_bytes()).hexdigest()
    for slug, record in ledger.accepted().items():
        if record.get("results_sha256") == digest:
            done = ledger.reproduction(slug, digest)
            if done:
                return (f"reproduced (board entry {slug}: re-run by the board on {done['at']}, every per-item "
                        "credit matched)")
            return f"consistent (board entry {slug}, not reproduced)"
    return f"consistent (its numbers follow from its samples); not an entry of the board {board}, so not reproduced"
