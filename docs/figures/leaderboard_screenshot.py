"""Regenerate docs/figures/leaderboard.png: the page `slmeval leaderboard build` writes, in headless chromium.

    slmeval demo --output out/demo            # a real run of the bundled demo model on the mini tasks
    python docs/figures/leaderboard_screenshot.py out/demo

The board is a copy of the repository's leaderboard/ (literature + official pins) with the given
run(s) added as verified submissions (the demo model: 1.35M parameters, 6.1M training tokens, see
docs/demo.md); the screenshot is the top of the page at 1400 x 1700 CSS pixels. Needs Debian's
`chromium` (the same driver as tests/test_leaderboard_browser.py).
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from _leaderboard_browser_helpers import Chromium, find_chromium  # noqa: E402

from slmeval.leaderboard import Board, add_submission  # noqa: E402
from slmeval.leaderboard.site import build_site  # noqa: E402

WIDTH, HEIGHT = 1400, 1700


def main(runs: list[str]) -> None:
    binary = find_chromium()
    if not runs or binary is None:
        raise SystemExit(__doc__ if runs else "usage: leaderboard_screenshot.py RUN_DIR [RUN_DIR ...]")
    with tempfile.TemporaryDirectory() as tmp:
        board = Board(Path(tmp) / "board")
        shutil.copytree(REPO / "leaderboard", board.root, ignore=shutil.ignore_patterns("submissions"))
        for i, run in enumerate(runs):
            add_submission(board, Path(run), "slmeval demo model" + (f" #{i + 1}" if i else ""),
                           params="1.35M", tokens="6.1M")
        build_site(board, Path(tmp) / "site")
        chromium = Chromium(binary)
        try:
            page = chromium.open_page((Path(tmp) / "site" / "index.html").as_uri())
            errors = chromium.console_errors(page)
            if errors:
                raise SystemExit(f"the page logged errors: {errors}")
            png = chromium.screenshot(page, WIDTH, HEIGHT)
        finally:
            chromium.close()
    target = Path(__file__).resolve().parent / "leaderboard.png"
    target.write_bytes(png)
    print(f"wrote {target} ({len(png)} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])
