"""Leaderboard: literature import, submission validation/refusal, hash pinning, site and exports."""
from __future__ import annotations

import csv
import io
import json
import pickle
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _leaderboard_helpers import correctness, write_run  # noqa: E402

from slmeval.cli import app
from slmeval.leaderboard import Board, SubmissionError, add_submission, pin_hashes
from slmeval.leaderboard.entries import Entry
from slmeval.leaderboard.literature import load_literature, reported_numbers
from slmeval.leaderboard.quantities import Quantity, parse_quantity, training_compute
from slmeval.leaderboard.site import build_scatter, build_site

REPO = Path(__file__).resolve().parents[1]
SHARED_LITERATURE = REPO.parent / "shared" / "reference" / "literature.csv"
TASKS = ["mini_sblimp", "mini_sstorycloze", "mini_tstorycloze", "mini_ms_sstorycloze"]


@pytest.fixture()
def board(tmp_path: Path) -> Board:
    """A copy of the repository's leaderboard/ without its submissions."""
    root = tmp_path / "board"
    shutil.copytree(REPO / "leaderboard", root, ignore=shutil.ignore_patterns("submissions"))
    # The repository pins the mini tasks from a real demo run (tests/test_demo_run.py checks them); these
    # tests pin them from their own synthetic runs, so they start from a board with the mini pins unset.
    official = json.loads((root / "official_tasks.json").read_text())
    for task in TASKS:
        official["tasks"][task] = dict.fromkeys(official["tasks"][task])
    (root / "official_tasks.json").write_text(json.dumps(official, indent=2))
    return Board(root)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for i, name in enumerate(["small", "large", "other_audio"]):
        correct = {t: correctness(60, 0.55 + 0.04 * i + 0.02 * j, seed=10 * i + j) for j, t in enumerate(TASKS)}
        out[name] = write_run(base / name, correct, model=f"ckpt/{name}",
                              data_tag="re-synthesised" if name == "other_audio" else "official-audio")
    return out


def _stored(board: Board) -> list[str]:
    return sorted(p.name for p in board.submissions_dir.iterdir()) if board.submissions_dir.exists() else []


# ---------------------------------------------------------------------------------------------- literature
def test_quantities_follow_the_stated_rules() -> None:
    assert parse_quantity("358M") == Quantity(358e6)
    assert parse_quantity("~720B") == Quantity(720e9, approx=True)
    assert parse_quantity("10.8B+~158B") == Quantity(168.8e9, approx=True)   # stages summed
    assert parse_quantity("1.4B+5M") == Quantity(1.405e9)
    assert parse_quantity("3.5e+8") == Quantity(3.5e8)                      # exponent sign is not a stage
    assert parse_quantity("") is None
    for bad in ("abc", "1.3X", "-5M", "0"):
        with pytest.raises(ValueError):
            parse_quantity(bad)
    assert training_compute(Quantity(1e9), Quantity(2e9, approx=True)) == Quantity(1.2e19, approx=True)
    assert training_compute(Quantity(1e9), None) is None


def test_literature_csv_is_the_shared_reference_marked_reported() -> None:
    rows = load_literature(REPO / "leaderboard" / "literature.csv")
    with (REPO / "leaderboard" / "literature.csv").open(newline="") as handle:
        ours = list(csv.DictReader(handle))
    assert {r["status"] for r in ours} == {"reported"} and all(r["source"] for r in ours)
    if SHARED_LITERATURE.exists():
        with SHARED_LITERATURE.open(newline="") as handle:
            shared = list(csv.DictReader(handle))
        assert [{k: r[k] for k in shared[0]} for r in ours] == shared
    by_model = {(r.model, r.source): r for r in rows}
    gslm = by_model[("GSLM", "Slamming (Maimon et al. 2025) Table 3")]
    assert gslm.compute == Quantity(6 * 100e6 * 1e9) and gslm.scores == {"sblimp": 54.2, "sstorycloze": 53.3,
                                                                         "tstorycloze": 66.6}
    moshi = by_model[("Moshi", "Slamming (Maimon et al. 2025) Table 3")]
    assert moshi.compute.approx and moshi.compute.value == pytest.approx(6 * 7e9 * 720e9)
    align = by_model[("AlignSLM-1.3B", "Slamming (Maimon et al. 2025) Table 3")]
    assert align.compute.value == pytest.approx(6 * 1e9 * (10.8e9 + 158e9))
    human = by_model[("Human (topline)", "Cuervo & Marxer 2024 Table 3")]
    assert human.compute is None and human.scores == {"sstorycloze": 79.9, "tstorycloze": 90.2}
    assert by_model[("AudioLM", "Cuervo & Marxer 2024 Table 3")].compute is None   # tokens not reported


# --------------------------------------------------------------------------------------------- submissions
def test_add_accepts_a_valid_run_verbatim(board: Board, runs: dict[str, Path]) -> None:
    submission = add_submission(board, runs["small"], "Slam-repro 358M", params="358M", tokens="16.7B")
    assert (submission.directory / "results.json").read_bytes() == (runs["small"] / "results.json").read_bytes()
    meta = json.loads((submission.directory / "submission.json").read_text())
    assert meta["compute"] == pytest.approx(6 * 358e6 * 16.7e9) and meta["compute_rule"] == "6*N*D"
    assert {s["status"] for s in meta["data_status_at_submission"].values()} == {"unofficial data"}
    assert all(s["reason"] == "official hashes not yet pinned" for s in meta["data_status_at_submission"].values())
    assert not [p for p in board.submissions_dir.iterdir() if p.name.startswith(".")]   # no staging left


def test_add_refuses_duplicates(board: Board, runs: dict[str, Path]) -> None:
    add_submission(board, runs["small"], "Slam-repro 358M")
    before = _stored(board)
    with pytest.raises(SubmissionError, match="already exists"):
        add_submission(board, runs["large"], "slam-REPRO 358m")
    with pytest.raises(SubmissionError, match="same model_sha256 and same task hashes"):
        add_submission(board, runs["small"], "renamed")
    assert _stored(board) == before


def _broken(tmp_path: Path, source: Path, edit) -> Path:
    data = json.loads((source / "results.json").read_text())
    edit(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["config"].pop("protocol"), "'protocol' is a required property"),
    (lambda d: d["config"].__setitem__("protocol", {}), "field config.protocol"),
    (lambda d: d["results"]["mini_sblimp"].__setitem__("acc", 1.5), "field results.mini_sblimp.acc"),
    (lambda d: d["provenance"].__setitem__("model_sha256", "not-a-hash"), "field provenance.model_sha256"),
    (lambda d: d["provenance"]["task_hashes"].pop("mini_tstorycloze"), "no entry for task 'mini_tstorycloze'"),
    (lambda d: d.pop("provenance"), "'provenance' is a required property"),
])
def test_add_refuses_schema_violations(board: Board, runs: dict[str, Path], tmp_path: Path, edit, message) -> None:
    with pytest.raises(SubmissionError, match="not a valid slmeval results.json") as caught:
        add_submission(board, _broken(tmp_path, runs["small"], edit), "x")
    assert message in str(caught.value)
    assert _stored(board) == []


def test_add_refuses_files_that_do_not_parse(board: Board, runs: dict[str, Path], tmp_path: Path) -> None:
    results = json.loads((runs["small"] / "results.json").read_text())
    cases = {
        "pickled.json": pickle.dumps(results),
        "yaml.json": b"results:\n  mini_sblimp: {acc: 0.6}\n",
        "nan.json": (runs["small"] / "results.json").read_bytes().replace(b'"acc": 0.', b'"acc": NaN, "x": 0.', 1),
        "dupkey.json": b'{"results": {}, "results": {}}',
        "list.json": b"[1, 2]",
    }
    for name, payload in cases.items():
        path = tmp_path / name
        path.write_bytes(payload)
        with pytest.raises(SubmissionError, match=name):
            add_submission(board, path, "x")
    assert _stored(board) == []
    result = CliRunner().invoke(app, ["leaderboard", "add", str(tmp_path / "yaml.json"), "--name", "x",
                                      "--board", str(board.root)])
    assert result.exit_code == 2 and "not valid JSON" in result.output


def test_add_checks_name_and_counts(board: Board, runs: dict[str, Path]) -> None:
    for bad in ("", "   ", "a\x00b", "x" * 201):
        with pytest.raises(SubmissionError, match="--name"):
            add_submission(board, runs["small"], bad)
    with pytest.raises(SubmissionError, match="--params"):
        add_submission(board, runs["small"], "ok", params="lots")


def test_pinned_hashes_make_matching_data_official(board: Board, runs: dict[str, Path]) -> None:
    runner = CliRunner()
    pinned = runner.invoke(app, ["leaderboard", "pin-hashes", str(runs["small"]), "--tasks", "mini_sblimp,mini_tstorycloze",
                                 "--board", str(board.root)])
    assert pinned.exit_code == 0, pinned.output
    official = board.official_tasks()
    small = json.loads((runs["small"] / "results.json").read_text())
    assert official["mini_sblimp"] == {**small["provenance"]["task_hashes"]["mini_sblimp"], "version": 1}
    assert official["sblimp"]["items_sha256"] is None                    # real benchmark still unpinned
    large = add_submission(board, runs["large"], "large").meta["data_status_at_submission"]
    assert large["mini_sblimp"]["status"] == "official data"
    assert large["mini_sstorycloze"] == {"status": "unofficial data", "reason": "official hashes not yet pinned"}
    other = add_submission(board, runs["other_audio"], "other").meta["data_status_at_submission"]
    assert other["mini_sblimp"] == {"status": "unofficial data", "reason": "audio differs from the official task data"}
    with pytest.raises(SubmissionError, match="already pinned"):
        pin_hashes(board, runs["other_audio"], ["mini_sblimp"])
    assert pin_hashes(board, runs["other_audio"], ["mini_sblimp"], force=True)


def test_relabelled_item_metadata_is_caught(board: Board, runs: dict[str, Path], tmp_path: Path) -> None:
    """The metrics group by the samples' meta (sBLIMP: one minimal pair = type, subtype, item): merging
    items changes the headline while ids, keys, scores and credits stay exactly as run."""
    assert pin_hashes(board, runs["small"], ["mini_sblimp"])
    correct = {t: correctness(60, 0.55 + 0.02 * j, seed=j) for j, t in enumerate(TASKS)}   # as runs["small"]

    def merge_items(task: str, index: int, meta: dict) -> None:
        if task == "mini_sblimp" and index < 30:     # half the voice-pairs become one minimal pair
            meta.update(type="type0", subtype="sub0", item="0")
    relabelled = write_run(tmp_path / "relabelled", correct, model="ckpt/relabelled", edit_meta=merge_items)
    small = json.loads((runs["small"] / "results.json").read_text())
    document = json.loads((relabelled / "results.json").read_text())
    assert document["results"]["mini_sblimp"]["acc"] != small["results"]["mini_sblimp"]["acc"]
    assert (document["provenance"]["task_hashes"]["mini_sblimp"]["items_sha256"]
            == small["provenance"]["task_hashes"]["mini_sblimp"]["items_sha256"])
    # Consistent throughout (metrics, breakdowns and meta_sha256 follow the new labels): accepted, but not
    # as the official task.
    status = add_submission(board, relabelled, "relabelled").meta["data_status_at_submission"]
    assert status["mini_sblimp"] == {"status": "unofficial data", "reason": "item metadata (types, voices, parts) "
                                                                            "differs from the official task"}
    # The hash left as it was (the labels edited in the samples file only): refused outright.
    stale = tmp_path / "stale"
    shutil.copytree(relabelled, stale)
    document["provenance"]["task_hashes"]["mini_sblimp"]["meta_sha256"] = \
        small["provenance"]["task_hashes"]["mini_sblimp"]["meta_sha256"]
    (stale / "results.json").write_text(json.dumps(document))
    with pytest.raises(SubmissionError, match=r"meta_sha256 does not match the item metadata \(meta\) of"):
        add_submission(board, stale, "stale")


def test_pin_hashes_refuses_a_run_whose_samples_do_not_give_its_item_hash(board: Board, runs: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    edited = tmp_path / "edited"
    shutil.copytree(runs["small"], edited)
    document = json.loads((edited / "results.json").read_text())
    document["provenance"]["task_hashes"]["mini_sblimp"]["items_sha256"] = "0" * 64
    (edited / "results.json").write_text(json.dumps(document))
    before = board.official_path.read_bytes()
    with pytest.raises(SubmissionError, match=r"items_sha256 does not match the items of .*nothing pinned"):
        pin_hashes(board, edited, ["mini_sblimp"])
    assert board.official_path.read_bytes() == before


# ------------------------------------------------------------------------------------------------- the site
def test_build_escapes_untrusted_text_and_exports_agree(board: Board, runs: dict[str, Path], tmp_path: Path) -> None:
    add_submission(board, runs["small"], "<script>alert(1)</script> {{ 7*7 }}", params="100M", tokens="1B")
    add_submission(board, runs["large"], "=HYPERLINK(\"http://x\")", params="1B", tokens="~20B")
    result = CliRunner().invoke(app, ["leaderboard", "build", "--out", str(tmp_path / "site"), "--board", str(board.root)])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "site" / "index.html").read_text()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }}" in html
    assert html.count("<script>") == 1 and "Content-Security-Policy" in html
    exported = json.loads((tmp_path / "site" / "leaderboard.json").read_text())["entries"]
    literature = load_literature(board.literature_path)
    assert len(exported) == 2 * len(TASKS) + len(reported_numbers(literature))   # merged per model and number
    assert {e["kind"] for e in exported} == {"consistent", "reported"}
    verified = [e for e in exported if e["kind"] == "consistent"]
    small = json.loads((runs["small"] / "results.json").read_text())["results"]
    for e in verified:
        if e["model"].startswith("<script>"):
            assert e["acc"] == pytest.approx(100 * small[e["task"]]["acc"])
            assert e["compute"] == pytest.approx(6e17) and e["data_status"] == "unofficial data"
    rows = list(csv.DictReader(io.StringIO((tmp_path / "site" / "leaderboard.csv").read_text())))
    assert len(rows) == len(exported)
    assert {r["model"] for r in rows if r["kind"] == "consistent"} == {"<script>alert(1)</script> {{ 7*7 }}",
                                                                    "'=HYPERLINK(\"http://x\")"}
    assert all(r["provenance"] for r in rows)


def _entry(model: str, acc: float, compute: float | None, params: float | None, kind: str = "reported") -> Entry:
    return Entry(kind=kind, model=model, section="sblimp", task="t", acc=acc, acc_stderr=None, acc_macro=None,
                 n_pairs=None, params=params, tokens=None, compute=compute, compute_approx=False, data_status="",
                 data_note="", protocol="", tokenizer="", provenance="p", category="")


def test_scatter_geometry() -> None:
    entries = [_entry("a", 55.0, 1e18, 1e8), _entry("b", 60.0, 1e20, 4e8), _entry("c", 70.0, 1e22, 1.6e9),
               _entry("no compute", 80.0, None, 7e9)]
    scatter = build_scatter(entries)
    assert scatter.hidden == 1 and len(scatter.points) == 3
    assert [k for _, k in scatter.x_ticks] == ["1e18", "1e19", "1e20", "1e21", "1e22"]   # plain numbers
    by = {p.label: p for p in scatter.points}
    # log-scale x: equal decades, equal pixels; y linear in accuracy
    assert by["b"].x - by["a"].x == pytest.approx(by["c"].x - by["b"].x, abs=0.2)
    assert (by["a"].y - by["b"].y) * 2 == pytest.approx(by["b"].y - by["c"].y, abs=0.3)
    assert by["a"].x == pytest.approx(scatter.left, abs=0.1) and by["c"].x == pytest.approx(scatter.right, abs=0.1)
    # marker area proportional to parameters (radius beyond the 3.5 px floor grows with sqrt(N))
    assert (by["c"].r - 3.5) / (by["b"].r - 3.5) == pytest.approx(2.0, abs=0.02)
    assert build_scatter([_entry("x", 50.0, None, None)]) is None


def test_repository_board_builds(tmp_path: Path) -> None:
    written = build_site(Board(REPO / "leaderboard"), tmp_path / "site")
    assert sorted(p.name for p in written) == ["index.html", "leaderboard.csv", "leaderboard.json"]


def test_mini_tasks_get_their_own_sections_and_compact_tokenizer(board: Board, runs: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    add_submission(board, runs["small"], "tiny", params="100M", tokens="1B")
    build_site(board, tmp_path / "site")
    exported = json.loads((tmp_path / "site" / "leaderboard.json").read_text())["entries"]
    verified = {e["task"]: e for e in exported if e["kind"] == "consistent"}
    # each mini task is its own section, as its task file declares: never next to the papers' sBLIMP numbers
    assert {t: e["family"] for t, e in verified.items()} == {t: t for t in TASKS}
    assert verified["mini_sblimp"]["section_title"].startswith("mini-sBLIMP") and verified["mini_sblimp"]["mini"]
    assert {e["kind"] for e in exported if e["family"] == "sblimp"} == {"reported"}
    html = (tmp_path / "site" / "index.html").read_text()
    order = [html.index(f'id="family-{key}"') for key in ("sblimp", "sstorycloze", "tstorycloze", "mini_ms_sstorycloze",
                                                          "mini_sblimp", "mini_sstorycloze", "mini_tstorycloze")]
    assert order == sorted(order)                      # the benchmarks first, bundled toy data after them
    # the tokenizer column is compact; the whole identity stays in the exports (and the cell's tooltip)
    assert verified["mini_sblimp"]["tokenizer"] == "logmel 40 mels K=64"
    assert "centroids_sha256=" in verified["mini_sblimp"]["tokenizer_identity"]
    assert 'title="centroids_sha256=' in html and ">logmel 40 mels K=64</td>" in html


def test_a_rows_section_keeps_its_published_key_family_in_json_and_csv():
    """Issue 24: `Entry.section` (a leaderboard section, not a task file's metric family) is written under
    the key leaderboard.json and leaderboard.csv were first published with, `family`; no new key appears."""
    from slmeval.leaderboard.entries import to_csv, to_json

    entry = _entry("m", 60.0, None, None)
    assert entry.section == entry.family == "sblimp"
    (row,) = json.loads(to_json([entry], "now"))["entries"]
    assert row["family"] == "sblimp" and "section" not in row
    header, line = list(csv.reader(io.StringIO(to_csv([entry]))))
    assert header[2] == "family" and "section" not in header and line[2] == "sblimp"
