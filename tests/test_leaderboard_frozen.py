"""Issue 19's forgeries, each refused with one clear message: a mini_sstorycloze run of 61.67 shown as
100.0 (deleted fields, counts written 123.0 or 0), a stored results.json or submission.json edited after
acceptance (with its sha256 updated), a bundled mini task moved into the real sStoryCloze section, a
name `add` refuses, and edits to the board's ledger itself."""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _leaderboard_helpers import write_run  # noqa: E402

from slmeval.cli import app
from slmeval.leaderboard import Board, SubmissionError, add_submission
from slmeval.leaderboard.ledger import ACCEPTED, Ledger, folder_hashes
from slmeval.leaderboard.site import build_site

REPO = Path(__file__).resolve().parents[1]
TASK = "mini_sstorycloze"
# 37 of the 60 stories right: 61.67%, the audit's real number for the demo model
CORRECT = [1.0 if i % 60 < 37 else 0.0 for i in range(60)]


@pytest.fixture()
def board(tmp_path: Path) -> Board:
    root = tmp_path / "board"
    shutil.copytree(REPO / "leaderboard", root, ignore=shutil.ignore_patterns("submissions"))
    return Board(root)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = write_run(tmp_path_factory.mktemp("frozen") / "run", {TASK: CORRECT}, model="ckpt/demo")
    assert json.loads((out / "results.json").read_text())["results"][TASK]["acc"] == pytest.approx(37 / 60)
    return out


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _write(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2))


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def _forge_100(folder: Path, how) -> None:
    """Every wrong story made right: positive score nudged above the negative, credit 1, metrics recomputed
    to 100.0, with the fields that would expose the nudge deleted (or the count made unusable)."""
    path = folder / f"samples_{TASK}.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for s in lines:
        if s["correct"] == 0.0:
            s["positive_score"], s["correct"] = s["negative_score"] + 0.05, 1.0
            if how == "deleted":
                del s["positive_logprob"], s["negative_logprob"], s["positive_n"], s["negative_n"]
            else:
                s["positive_n"] = how
    path.write_text("".join(json.dumps(s) + "\n" for s in lines))
    results = _json(folder / "results.json")
    results["results"][TASK].update(acc=1.0, acc_stderr=0.0)
    _write(folder / "results.json", results)


@pytest.mark.parametrize("how,message", [
    ("deleted", "positive_logprob is missing: the score cannot be re-derived without it"),
    (123.0, "positive_n must be an integer >= 1 (the number of scored tokens), got 123.0"),
    (0, "positive_n must be an integer >= 1 (the number of scored tokens), got 0"),
])
def test_the_61_67_to_100_forgery_is_refused_by_add_and_check(board, run, tmp_path, how, message):
    forged = _forge_100(_copy(run, tmp_path / "forged"), how) or tmp_path / "forged"
    res = _cli("leaderboard", "add", str(forged), "--name", "forged", "--board", str(board.root))
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, res.output
    assert not (board.root / "ledger.jsonl").exists()              # nothing was accepted
    res = _cli("check", "--results", str(forged), "--baseline", str(run))
    assert res.exit_code == 2 and message in res.output and "significant gain" not in res.output
    res = _cli("check", "--results", str(run), "--baseline", str(forged))   # nor can it serve as a baseline
    assert res.exit_code == 2 and "BASELINE run" in res.output
    res = _cli("leaderboard", "pin-hashes", str(forged), "--board", str(board.root))   # nor pin the task data
    assert res.exit_code == 2 and message in res.output and "nothing pinned" in res.output


def _accept(board: Board, run: Path, name: str = "demo 61.67") -> Path:
    res = _cli("leaderboard", "add", str(run), "--name", name, "--params", "1M", "--tokens", "1B",
               "--board", str(board.root))
    assert res.exit_code == 0, res.output
    return add_stored(board)


def add_stored(board: Board) -> Path:
    return next(p for p in board.submissions_dir.iterdir() if not p.name.startswith("."))


def _build(board: Board, tmp_path: Path):
    return _cli("leaderboard", "build", "--out", str(tmp_path / "site"), "--board", str(board.root))


def test_results_edited_after_acceptance_with_its_sha256_updated_is_refused(board, run, tmp_path):
    stored = _accept(board, run)
    assert _build(board, tmp_path).exit_code == 0
    results = _json(stored / "results.json")     # the audit's edits: model hash, date, tokenizer, section
    results["provenance"].update(model_sha256="ab" * 32, date="2020-01-01T00:00:00Z")
    results["config"].update(model_sha256="ab" * 32)
    results["config"]["tokenizer"]["n_units"] = 500
    results["configs"][TASK]["leaderboard"] = {"section": "sstorycloze", "title": "sStoryCloze"}
    _write(stored / "results.json", results)
    meta = _json(stored / "submission.json")
    meta["files"]["results.json"] = meta["results_sha256"] = hashlib.sha256((stored / "results.json").read_bytes()
                                                                            ).hexdigest()
    _write(stored / "submission.json", meta)
    res = _build(board, tmp_path)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "differs from what was accepted" in res.output and "results.json (edited)" in res.output
    assert "submission.json (edited)" in res.output and "Accepted files are frozen" in res.output


@pytest.mark.parametrize("field,value", [("name", "GPT-5 speech"), ("params", 7e9), ("compute", 1e24),
                                         ("name", "demo \u202e16.67")])
def test_submission_json_edited_after_acceptance_is_refused(board, run, tmp_path, field, value):
    stored = _accept(board, run)
    meta = _json(stored / "submission.json")
    meta[field] = value
    _write(stored / "submission.json", meta)
    res = _build(board, tmp_path)
    assert res.exit_code == 2 and "submission.json (edited)" in res.output, res.output


def test_names_are_re_validated_at_build_even_behind_a_rewritten_ledger(board, run, tmp_path):
    stored = _accept(board, run)
    meta = _json(stored / "submission.json")
    meta["name"] = "demo \u202e16.67"                 # U+202E RIGHT-TO-LEFT OVERRIDE: `add` refuses it
    _write(stored / "submission.json", meta)
    (board.root / "ledger.jsonl").unlink()             # a forger who rewrites the ledger too
    Ledger.read(board.root).append(ACCEPTED, stored.name, name=meta["name"], results_sha256=meta["results_sha256"],
                                   files=folder_hashes(stored))
    res = _build(board, tmp_path)
    assert res.exit_code == 2 and "is not a name `add` accepts as is" in res.output, res.output
    assert "\\u202e" in res.output and "\u202e" not in res.output   # named, escaped: never shown raw
    shutil.rmtree(stored)
    (board.root / "ledger.jsonl").unlink()
    res = _cli("leaderboard", "add", str(run), "--name", "x\u202ey", "--board", str(board.root))
    assert res.exit_code == 2 and "control or format characters" in res.output


def test_a_mini_task_cannot_be_moved_into_a_real_section(board, run, tmp_path):
    moved = _copy(run, tmp_path / "moved")
    results = _json(moved / "results.json")
    results["configs"][TASK]["leaderboard"] = {"section": "sstorycloze", "title": "sStoryCloze"}
    results["configs"][TASK]["mini"] = False
    _write(moved / "results.json", results)
    res = _cli("leaderboard", "add", str(moved), "--name", "moved", "--board", str(board.root))
    assert res.exit_code == 2, res.output
    assert "configs.mini_sstorycloze.leaderboard = {'section': 'sstorycloze'" in res.output
    assert "configs.mini_sstorycloze.mini = False but the registered task 'mini_sstorycloze' version 1 has True" \
        in res.output
    # an honest run is placed by the board's registry: its own section, after the benchmarks, marked mini
    _accept(board, run)
    build_site(board, tmp_path / "site")
    rows = [e for e in _json(tmp_path / "site" / "leaderboard.json")["entries"] if e["kind"] == "consistent"]
    assert [(e["family"], e["mini"]) for e in rows] == [(TASK, True)]


def test_an_unregistered_task_gets_a_section_of_its_own(board, tmp_path):
    custom = write_run(tmp_path / "custom", {"my_pairs": [1.0, 0.0, 1.0, 1.0]}, model="ckpt/custom")
    _accept(board, custom, "custom")
    build_site(board, tmp_path / "site")
    (row,) = [e for e in _json(tmp_path / "site" / "leaderboard.json")["entries"] if e["kind"] == "consistent"]
    assert row["family"] == "my_pairs" and row["section_title"] == "my_pairs (not a task registered on this board)"


def test_ledger_edits_and_unrecorded_folders_are_refused(board, run, tmp_path):
    stored = _accept(board, run)
    ledger_path = board.root / "ledger.jsonl"
    pristine = ledger_path.read_text()
    head = Ledger.read(board.root).head
    res = _build(board, tmp_path)
    assert res.exit_code == 0 and head in (tmp_path / "site" / "index.html").read_text()   # the page shows the head
    # a folder dropped in without `add`
    shutil.copytree(stored, board.submissions_dir / "sneaked-in")
    res = _build(board, tmp_path)
    assert res.exit_code == 2 and "sneaked-in: not in the board ledger" in res.output
    shutil.rmtree(board.submissions_dir / "sneaked-in")
    # a file added to an accepted folder
    (stored / "notes.txt").write_text("x")
    assert "notes.txt (added)" in _build(board, tmp_path).output
    (stored / "notes.txt").unlink()
    # the ledger line edited by hand (a hash changed to match an edited file)
    record = json.loads(pristine)
    record["files"]["results.json"] = "00" * 32
    ledger_path.write_text(json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")
    res = _build(board, tmp_path)
    assert res.exit_code == 2 and "differs from what was accepted" in res.output
    ledger_path.write_text(pristine.replace('"seq":1', '"seq": 1'))
    assert "the ledger was edited by hand" in _build(board, tmp_path).output
    # a second acceptance whose link names another line: the chain is broken
    second = json.loads(pristine)
    second.update(seq=2, prev="11" * 32, slug="other")
    ledger_path.write_text(pristine + json.dumps(second, sort_keys=True, separators=(",", ":")) + "\n")
    assert "the chain is broken" in _build(board, tmp_path).output
    # an accepted folder removed
    ledger_path.write_text(pristine)
    shutil.rmtree(stored)
    res = _build(board, tmp_path)
    assert res.exit_code == 2 and "are missing (the ledger records them" in res.output


def test_pins_edited_by_hand_are_refused(board, run, tmp_path):
    """official_tasks.json decides "official data" on the page: once pinned, only pin-hashes changes it."""
    _accept(board, run)
    # --force: the repository already pins the mini tasks from a real demo run; this run is synthetic
    res = _cli("leaderboard", "pin-hashes", str(run), "--force", "--board", str(board.root))
    assert res.exit_code == 0, res.output
    assert [r["event"] for r in Ledger.read(board.root).records] == ["accepted", "pinned"]
    build_site(board, tmp_path / "site")
    (row,) = [e for e in _json(tmp_path / "site" / "leaderboard.json")["entries"] if e["kind"] == "consistent"]
    assert row["data_status"] == "official data"
    document = _json(board.official_path)
    document["tasks"]["sstorycloze"]["items_sha256"] = "ab" * 32
    _write(board.official_path, document)
    res = _build(board, tmp_path)
    assert res.exit_code == 2 and "official_tasks.json: differs from the file `pin-hashes` wrote" in res.output
    res = _cli("leaderboard", "pin-hashes", str(run), "--board", str(board.root))
    assert res.exit_code == 2 and "never by hand" in res.output


def test_two_appends_at_once_never_lose_a_line(board, run):
    """Two commands that read the ledger before either wrote: the second stops instead of dropping the first."""
    from slmeval.leaderboard.ledger import LedgerError

    stored = _accept(board, run)
    first, second = Ledger.read(board.root), Ledger.read(board.root)
    first.append("reproduced", stored.name, results_sha256="x")
    with pytest.raises(LedgerError, match="changed while this command ran .* run it again"):
        second.append("reproduced", stored.name, results_sha256="y")
    assert [r["event"] for r in Ledger.read(board.root).records] == ["accepted", "reproduced"]
