"""The built page in headless chromium: loads without console errors, sorts, shows hostile names as text."""
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
    """Click `header` in the family's table; return (cell data values, model names) in display order."""
    script = f"""(function () {{
      var table = document.querySelector("#family-{family} table");
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
    assert browser.evaluate(page, "document.querySelectorAll('section table.sortable').length") == 3
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
