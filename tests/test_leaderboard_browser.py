"""The built page in headless chromium: loads without console errors or network loads, sorts, filters,
shows hostile names as text."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _leaderboard_browser_helpers import Chromium, find_chromium  # noqa: E402
from _leaderboard_helpers import correctness, write_run  # noqa: E402

from slmeval.leaderboard import Board, add_submission
from slmeval.leaderboard.site import build_site

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH "
                                "(install Debian's `chromium` package; `make setup` does)")
HOSTILE = ['<script>window.__pwned = 1</script>', '<img src=x onerror="window.__pwned = 2">']
TASKS = ["sblimp", "sstorycloze", "tstorycloze"]   # verified rows next to the papers' numbers


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    board = Board(root / "board")
    shutil.copytree(REPO / "leaderboard", board.root, ignore=shutil.ignore_patterns("submissions"))
    for i, (name, params) in enumerate([(HOSTILE[0], "358M"), (HOSTILE[1], None), ("Slam-repro", "1.3B")]):
        run = write_run(root / f"run{i}", {t: correctness(40, 0.55 + 0.05 * i, seed=i * 7 + j)
                                           for j, t in enumerate(TASKS)}, model=f"ckpt/{i}")
        add_submission(board, run, name, params=params, tokens="10B" if params else None)
    build_site(board, root / "site")
    return root / "site"


@pytest.fixture(scope="module")
def browser():
    chromium = Chromium(CHROMIUM)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def page(browser: Chromium, site: Path) -> str:
    return browser.open_page((site / "index.html").as_uri())


def _column(browser: Chromium, page: str, family: str, header: str) -> tuple[list[str], list[str]]:
    """Click `header` in the family's table (`summary`: the summary table); return (cell data values,
    model names) in display order."""
    section = "summary" if family == "summary" else f"family-{family}"
    script = f"""(function () {{
      var table = document.querySelector("#{section} table");
      var heads = Array.from(table.querySelectorAll("thead th"));
      var column = heads.findIndex(function (th) {{ return th.textContent.trim().startsWith({json.dumps(header)}); }});
      heads[column].querySelector("button").click();
      return Array.from(table.tBodies[0].rows).map(function (row) {{
        var cell = row.cells[column];
        return [cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent.trim(),
                row.cells[0].textContent];
      }});
    }})()"""
    pairs = browser.evaluate(page, script)
    return [p[0] for p in pairs], [p[1] for p in pairs]


def test_page_loads_without_console_errors(browser: Chromium, page: str) -> None:
    # the summary, then one table per benchmark
    assert browser.evaluate(page, "Array.from(document.querySelectorAll('section table.sortable'))"
                                  ".map(function (t) { return t.closest('section').id; })") == [
        "summary", "family-sblimp", "family-sstorycloze", "family-tstorycloze"]
    assert browser.evaluate(page, "document.querySelectorAll('svg circle.point').length") > 10
    assert browser.console_errors(page) == []


def test_console_check_catches_a_blocked_script(browser: Chromium, site: Path, tmp_path: Path) -> None:
    # Negative control: an inline script the page's CSP does not allow must show up as a console error,
    # otherwise the test above could not fail.
    tampered = tmp_path / "index.html"
    tampered.write_text((site / "index.html").read_text().replace("</body>", "<script>var x = 1;</script></body>"))
    other = browser.open_page(tampered.as_uri())
    assert browser.console_errors(other)


def test_hostile_names_render_as_text(browser: Chromium, page: str) -> None:
    assert browser.evaluate(page, "typeof window.__pwned") == "undefined"
    names = browser.evaluate(page, "Array.from(document.querySelectorAll('#family-sblimp tbody tr.consistent td:first-child'))"
                                   ".map(function (td) { return td.textContent; })")
    assert sorted(names) == sorted([*HOSTILE, "Slam-repro"])
    assert browser.evaluate(page, "document.querySelectorAll('tbody img').length") == 0
    labels = browser.evaluate(page, "Array.from(document.querySelectorAll('svg title')).map(function (t) { return t.textContent; })")
    assert any(label.startswith(HOSTILE[0]) for label in labels)


def test_numeric_sorting_with_blanks_last(browser: Chromium, page: str, site: Path) -> None:
    exported = json.loads((site / "leaderboard.json").read_text())["entries"]
    params = [e["params"] for e in exported if e["family"] == "sstorycloze"]
    known = sorted(p for p in params if p is not None)
    blanks = len(params) - len(known)
    ascending, _ = _column(browser, page, "sstorycloze", "params")
    assert [float(v) for v in ascending[:len(known)]] == known and ascending[len(known):] == [""] * blanks
    descending, _ = _column(browser, page, "sstorycloze", "params")
    assert [float(v) for v in descending[:len(known)]] == known[::-1] and descending[len(known):] == [""] * blanks
    accuracy, _ = _column(browser, page, "tstorycloze", "accuracy")      # page starts sorted descending
    values = [float(v) for v in accuracy]
    assert values == sorted(values)


def test_text_sorting(browser: Chromium, page: str) -> None:
    _, models = _column(browser, page, "sblimp", "model")
    plain = [m.casefold() for m in models if m[0].isalnum()]     # hostile names start with "<"
    assert len(plain) > 20 and plain == sorted(plain)
    _, models_desc = _column(browser, page, "sblimp", "model")
    plain_desc = [m.casefold() for m in models_desc if m[0].isalnum()]
    assert plain_desc == sorted(plain, reverse=True)


def test_page_loads_nothing_from_the_network(browser: Chromium, page: str) -> None:
    # Works offline: no stylesheet, script, font or image is fetched (the CSP would block it anyway).
    assert browser.evaluate(page, "performance.getEntriesByType('resource').length") == 0


def test_summary_sorts_by_average_with_blanks_last(browser: Chromium, page: str, site: Path) -> None:
    exported = json.loads((site / "leaderboard.json").read_text())["entries"]
    trio = ("sblimp", "sstorycloze", "tstorycloze")
    scores: dict[tuple[str, str], dict[str, float]] = {}
    for e in exported:                      # first number per model and benchmark, as the summary shows
        if e["family"] in trio and e["acc"] is not None:
            scores.setdefault((e["model"], e["kind"]), {}).setdefault(e["family"], e["acc"])
    averages = sorted(sum(v.values()) / 3 for v in scores.values() if len(v) == 3)
    ascending, _ = _column(browser, page, "summary", "average")     # the page opens sorted descending
    known = [float(v) for v in ascending if v != ""]
    assert known == pytest.approx(averages, abs=1e-9) and ascending[len(known):] == [""] * (len(ascending) - len(known))
    descending, models = _column(browser, page, "summary", "average")
    assert [float(v) for v in descending[:len(known)]] == pytest.approx(averages[::-1], abs=1e-9)
    assert len(models) == len(scores)                              # one row per model and kind


def _visible(browser: Chromium, page: str, selector: str) -> list[str]:
    return browser.evaluate(page, f"Array.from(document.querySelectorAll({json.dumps(selector)}))"
                                  ".filter(function (tr) { return tr.offsetParent !== null; })"
                                  ".map(function (tr) { return tr.cells[0].textContent; })")


def test_filter_box_keeps_matching_rows_only(browser: Chromium, page: str) -> None:
    every = _visible(browser, page, "table.sortable tbody tr")
    browser.type_into(page, "#filter", "twist 13b")          # every word must match, any case
    shown = _visible(browser, page, "table.sortable tbody tr")
    assert shown and set(shown) == {"TWIST-13B"}
    assert len(shown) == 1 + 3                               # its summary row and one row per benchmark
    count = browser.evaluate(page, "document.getElementById('filter-count').textContent")
    assert count == f"{len(shown)} of {len(every)} rows match"
    browser.type_into(page, "#filter", "Slam-repro")
    assert set(_visible(browser, page, "#summary tbody tr")) == {"Slam-repro"}
    browser.type_into(page, "#filter", "")
    assert _visible(browser, page, "table.sortable tbody tr") == every
    assert browser.console_errors(page) == []
