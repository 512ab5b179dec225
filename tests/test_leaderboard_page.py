"""What the leaderboard page shows researchers (issue 20): literature rows merged per model and number,
the protocol in words, sections only for declared tasks, the model × task summary with its average."""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _leaderboard_helpers import correctness, write_run  # noqa: E402

from slmeval.leaderboard import Board, add_submission  # noqa: E402
from slmeval.leaderboard.literature import LiteratureError, load_literature, reported_numbers  # noqa: E402
from slmeval.leaderboard.present import describe_protocol  # noqa: E402
from slmeval.leaderboard.site import build_site  # noqa: E402
from slmeval.scoring import PRESETS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SLAMMING, CUERVO = "Slamming (Maimon et al. 2025) Table 3", "Cuervo & Marxer 2024 Table 3"


def test_literature_rows_merge_per_model_and_number():
    rows = load_literature(REPO / "leaderboard" / "literature.csv")
    numbers = reported_numbers(rows)
    # counted by hand from literature.csv: 87 numbers; both tables give the same number for GSLM (3),
    # TWIST 1.3B (sSC, tSC: 2), 7B (sBLIMP, tSC: 2), 13B (3), the scaling paper's best model (3),
    # SpiritLM speech-only (3) and speech-text (3): 19 merged away
    assert sum(len(r.scores) for r in rows) == 87 and len(numbers) == 87 - 19
    by = {}
    for n in numbers:
        by.setdefault((n.model, n.section), []).append(n)
    gslm = by[("GSLM", "sblimp")]
    assert len(gslm) == 1 and gslm[0].score == 54.2 and gslm[0].sources == (SLAMMING, CUERVO)
    assert gslm[0].tokens.value == 1e9          # Cuervo & Marxer leave tokens blank: Slamming's 1B is kept
    twist13 = by[("TWIST-13B", "sblimp")]
    assert len(twist13) == 1 and twist13[0].citation == f"{SLAMMING}; {CUERVO} (as “TWIST warm-init 13B”)"
    assert not any(n.model == "TWIST warm-init 13B" for n in numbers)
    # the papers disagree on TWIST-7B's sStoryCloze (55.3 vs 55.1): two rows, each citing its table
    assert sorted((n.score, n.citation) for n in by[("TWIST-7B", "sstorycloze")]) == [
        (55.1, f"{CUERVO} (as “TWIST warm-init 7B”)"), (55.3, SLAMMING)]
    # TWIST 1.3B: one number, two parameter counts (1B in Slamming, 1.3B in Cuervo & Marxer): both said
    assert by[("TWIST-1.3B", "tstorycloze")][0].citation.endswith("(as “TWIST warm-init 1.3B”, 1.3B params)")
    assert ("TWIST cold-init 1.3B", "sblimp") in by      # a different model: never merged


def test_same_model_as_must_name_another_row(tmp_path):
    text = (REPO / "leaderboard" / "literature.csv").read_text().splitlines()
    text[2] = text[2][: text[2].rindex(",")] + ",No Such Model"
    path = tmp_path / "literature.csv"
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(LiteratureError, match=r"literature.csv:3: column same_model_as must name another row's model"):
        load_literature(path)


@pytest.mark.parametrize("preset, tie, text", [
    ("slmeval", None, "slmeval: mean log-prob per unit, after BOS, EOS not scored, ties ½ credit"),
    ("slamkit", None, "slamkit: mean log-prob per unit, after BOS, EOS scored, ties ½ credit"),
    ("cuervo", None, "cuervo: mean log-prob per unit, after EOS (as start token), EOS not scored, ties no credit"),
    ("cuervo", 0.5, "cuervo: mean log-prob per unit, after EOS (as start token), EOS not scored, "
                    "ties ½ credit"),     # a task's own credit (sBLIMP's task file under cuervo)
])
def test_protocol_in_words(preset, tie, text):
    assert describe_protocol(PRESETS[preset].to_dict(), tie) == text


def test_protocol_in_words_names_sum_and_dtype():
    proto = {**PRESETS["slmeval"].to_dict(), "score": "sum", "start_token": "none", "logprob_dtype": "bfloat16",
             "name": "slmeval+custom"}
    assert describe_protocol(proto) == ("slmeval+custom: summed log-prob, no start token (first unit "
                                                 "unscored), EOS not scored, ties ½ credit, log-probs in bfloat16")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The repository's literature plus two verified runs on the papers' benchmarks, one of them also on
    two ad-hoc tasks (no task file declares them) and a mini task."""
    root = tmp_path_factory.mktemp("page")
    board = Board(root / "board")
    shutil.copytree(REPO / "leaderboard", board.root, ignore=shutil.ignore_patterns("submissions"))
    a = {"sblimp": [1.0] * 30 + [0.0] * 10, "sstorycloze": [1.0] * 24 + [0.0] * 16,
         "tstorycloze": [1.0] * 35 + [0.0] * 5}          # 75 %, 60 %, 87.5 %: average 74.1666…
    b = {"sblimp": correctness(40, 0.6, seed=1), "text_blimp_anaphor": correctness(40, 0.7, seed=2),
         "text_blimp_island": correctness(40, 0.8, seed=3), "mini_sblimp": correctness(40, 0.6, seed=4)}
    add_submission(board, write_run(root / "a", a, model="ckpt/a"), "Model A", params="358M", tokens="10B")
    add_submission(board, write_run(root / "b", b, model="ckpt/b"), "Model B", params="100M", tokens="1B")
    build_site(board, root / "site")
    return root / "site"


def _section(html: str, key: str) -> str:
    start = html.index(f'<section id="{key}">')
    return html[start:html.index("</section>", start)]


def test_ad_hoc_tasks_share_one_table_without_chart(site):
    html = (site / "index.html").read_text()
    ids = re.findall(r'<section id="([^"]+)">', html)
    assert ids == ["summary", "family-sblimp", "family-sstorycloze", "family-tstorycloze", "family-mini_sblimp",
                   "family-_other"]
    other = _section(html, "family-_other")
    assert "<svg" not in other and other.count("<tr class=") == 2
    assert "text_blimp_anaphor" in other and "text_blimp_island" in other
    # charts only in benchmark sections, with two points or more (the mini section: table only)
    assert "<svg" not in _section(html, "family-mini_sblimp") and "<svg" in _section(html, "family-sblimp")
    assert "slmeval: mean log-prob per unit, after BOS, EOS not scored, ties ½ credit" in _section(html, "family-sblimp")
    assert "tie_value_by_family={}" not in re.sub(r'title="[^"]*"', "", html)   # raw fields: tooltips and exports only
    exported = json.loads((site / "leaderboard.json").read_text())["entries"]
    assert all("tie_value_by_family={}" in e["protocol_identity"] for e in exported if e["kind"] == "verified")


def _summary_rows(html: str) -> dict[str, list[str]]:
    table = _section(html, "summary")
    header = re.findall(r"<th [^>]*><button type=\"button\">([^<]+)</button>", table)
    rows = {}
    for row in re.findall(r"<tr class=\"(?:consistent|reported)\">(.*?)</tr>", table, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        rows[re.sub(r"<[^>]+>", "", cells[0])] = [re.sub(r"<[^>]+>|\*", "", c).strip() for c in cells]
    return {"__header__": header, **rows}


def test_summary_table_averages_the_papers_benchmarks(site):
    rows = _summary_rows((site / "index.html").read_text())
    header = rows.pop("__header__")
    assert header[:6] == ["model", "kind", "average %", "sBLIMP", "sStoryCloze", "tStoryCloze"]
    col = {name: i for i, name in enumerate(header)}
    a = rows["Model A"]
    assert a[col["average %"]] == f"{(75.0 + 60.0 + 87.5) / 3:.2f}" == "74.17"
    assert a[col["sBLIMP"]] == "75.00" and a[col["compute"]] == "2.1e19"        # 6 · 358M · 10B
    assert rows["Model B"][col["average %"]] == ""                              # only sBLIMP of the three
    assert rows["GSLM"][col["average %"]] == f"{(54.2 + 53.3 + 66.6) / 3:.2f}"
    assert rows["Human (topline)"][col["average %"]] == ""                      # no sBLIMP reported
    # one row per model: TWIST-7B's two sStoryCloze numbers share a cell, the first shown, both in its tooltip
    html = (site / "index.html").read_text()
    assert list(rows).count("TWIST-7B") == 1 and rows["TWIST-7B"][col["sStoryCloze"]] == "55.30"
    assert re.search(r'title="55\.30 \(Slamming[^"]*\); 55\.10 \(Cuervo', html)
    averages = [float(r[col["average %"]]) for r in rows.values() if r[col["average %"]]]
    assert averages == sorted(averages, reverse=True)         # the page opens sorted by the average
    assert "mini-sBLIMP" in " ".join(header) and "text_blimp" not in " ".join(header)
