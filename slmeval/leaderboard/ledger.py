"""The board's ledger: what was accepted (and reproduced), recorded outside the submission folders.

`leaderboard/ledger.jsonl` is append-only: one JSON object per line, each naming the sha256 of the line
before it (`prev`), so a line changed, removed or reordered breaks every later link. Acceptance records
the sha256 of every file of the submission folder, submission.json included; a reproduction records the
run it re-made. `build` re-reads the ledger, walks the chain, and refuses any submission folder whose
files differ from what was recorded at acceptance (an added, removed or edited file), any folder the
ledger never accepted, and any accepted folder that is gone.

What the chain does and does not give: an editor of a submission folder cannot make an edit pass
without also rewriting the ledger; someone who rewrites the ledger too (recomputing every later link)
is caught only by comparing the ledger's head — printed by `build` and shown on the page — with a
head published earlier (a commit, a release note). The ledger is not signed with a secret key.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from slmeval.check.runs import RunError, parse_json_strict
from slmeval.io import atomic_write_text

LEDGER_NAME = "ledger.jsonl"
GENESIS = "0" * 64
ACCEPTED = "accepted"
REPRODUCED = "reproduced"
PINNED = "pinned"           # official_tasks.json rewritten by `pin-hashes` (slug: that file's name)
MAX_LEDGER_BYTES = 64 * 2**20


class LedgerError(ValueError):
    """A ledger whose chain is broken, or a folder that differs from what the ledger recorded."""


def line_hash(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def _line(record: dict) -> str:
    # One canonical form per record: the hash a later line names is the hash of exactly these bytes.
    return json.dumps(record, sort_keys=True, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def folder_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every plain file in a submission folder (sub-folders and links are refused by the caller
    comparing against the ledger: they are not in any recorded list)."""
    out = {}
    for path in sorted(directory.iterdir()):
        if path.is_symlink() or not path.is_file():
            out[path.name] = "not a plain file"
            continue
        out[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@dataclass
class Ledger:
    path: Path
    records: list[dict]
    head: str

    @classmethod
    def read(cls, board_root: Path) -> "Ledger":
        """The ledger with its chain checked (an absent ledger is an empty one)."""
        path = board_root / LEDGER_NAME
        if not path.exists():
            return cls(path, [], GENESIS)
        try:
            if path.stat().st_size > MAX_LEDGER_BYTES:
                raise LedgerError(f"{path}: larger than the {MAX_LEDGER_BYTES}-byte limit")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LedgerError(f"{path}: cannot read ({exc})") from None
        records, head = [], GENESIS
        for number, line in enumerate(text.splitlines(), 1):
            where = f"{path}:{number}"
            try:
                record = parse_json_strict(line, source=where)
            except RunError as exc:
                raise LedgerError(str(exc)) from None
            if not isinstance(record, dict) or _line(record) != line:
                raise LedgerError(f"{where}: not a ledger line as slmeval writes it (one canonical JSON object); "
                                  "the ledger was edited by hand")
            if record.get("seq") != number or record.get("prev") != head:
                raise LedgerError(f"{where}: the chain is broken (seq {record.get('seq')!r}, prev "
                                  f"{str(record.get('prev'))[:12]}... but the line before hashes to {head[:12]}...): "
                                  "a ledger line was changed, removed or reordered")
            if record.get("event") not in (ACCEPTED, REPRODUCED, PINNED) or not isinstance(record.get("slug"), str):
                raise LedgerError(f"{where}: unknown event {record.get('event')!r}")
            records.append(record)
            head = line_hash(line)
        return cls(path, records, head)

    def append(self, event: str, slug: str, **fields: object) -> dict:
        """Add one record (the file is rewritten atomically with the earlier lines unchanged). Two commands
        appending at once: the second finds the ledger changed under its lock and stops (run it again)."""
        record = {"seq": len(self.records) + 1, "prev": self.head, "event": event, "slug": slug,
                  "at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **fields}
        lines = [_line(r) for r in self.records] + [_line(record)]
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if Ledger.read(self.path.parent).head != self.head:
                raise LedgerError(f"{self.path}: changed while this command ran (another add, reproduce or "
                                  "pin-hashes); nothing was recorded: run it again")
            atomic_write_text(self.path, "".join(line + "\n" for line in lines))
        self.records.append(record)
        self.head = line_hash(lines[-1])
        return record

    def accepted(self) -> dict[str, dict]:
        """slug -> its acceptance record (a slug accepted twice is a ledger no slmeval wrote)."""
        out: dict[str, dict] = {}
        for record in self.records:
            if record["event"] == ACCEPTED:
                if record["slug"] in out:
                    raise LedgerError(f"{self.path}: submission {record['slug']!r} is accepted twice")
                if not isinstance(record.get("files"), dict):
                    raise LedgerError(f"{self.path}:{record['seq']}: acceptance without a 'files' list")
                out[record["slug"]] = record
        return out

    def reproduction(self, slug: str, results_sha256: str) -> dict | None:
        """The latest reproduction of the accepted results.json with this sha256, if any."""
        found = None
        for record in self.records:
            if (record["event"] == REPRODUCED and record["slug"] == slug
                    and record.get("results_sha256") == results_sha256):
                found = record
        return found

    def check_pins(self, official_path: Path) -> None:
        """official_tasks.json (which decides "official data" on the page) is the file the last `pin-hashes`
        wrote, once any was recorded; a board never pinned ships the repository's file."""
        pins = [r for r in self.records if r["event"] == PINNED]
        if not pins:
            return
        try:
            actual = hashlib.sha256(official_path.read_bytes()).hexdigest()
        except OSError as exc:
            raise LedgerError(f"{official_path}: cannot read ({exc.strerror})") from None
        if actual != pins[-1].get("sha256"):
            raise LedgerError(f"{official_path}: differs from the file `pin-hashes` wrote on {pins[-1]['at']} "
                              "(pins are changed with `slmeval leaderboard pin-hashes`, never by hand)")

    def check_folders(self, submissions_dir: Path) -> None:
        """Every folder was accepted and is byte for byte what was accepted; every accepted folder is there."""
        accepted = self.accepted()
        present = sorted(p.name for p in submissions_dir.iterdir()
                         if p.is_dir() and not p.name.startswith(".")) if submissions_dir.is_dir() else []
        for slug in present:
            if slug not in accepted:
                raise LedgerError(f"{submissions_dir / slug}: not in the board ledger {self.path.name} (a "
                                  "submission folder is only shown after `slmeval leaderboard add` accepted it)")
            recorded, actual = accepted[slug]["files"], folder_hashes(submissions_dir / slug)
            changed = sorted(n for n in set(recorded) | set(actual) if recorded.get(n) != actual.get(n))
            if changed:
                what = ", ".join(f"{n} ({'added' if n not in recorded else 'removed' if n not in actual else 'edited'})"
                                 for n in changed)
                raise LedgerError(f"{submissions_dir / slug}: differs from what was accepted on "
                                  f"{accepted[slug]['at']}: {what}. Accepted files are frozen; submit a new run "
                                  "instead")
        gone = sorted(set(accepted) - set(present))
        if gone:
            raise LedgerError(f"{submissions_dir}: accepted submission(s) {gone} are missing (the ledger "
                              "records them; a removal is not silent)")
