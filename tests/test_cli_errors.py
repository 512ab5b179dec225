"""Every command reports bad input the same way: one `error: …` line with the user's text printed as written
(no Rich markup or emoji read into it), exit 2, no traceback."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from slmeval.cli import app

MARKED = "[red]x[/]:warning:"   # would vanish or turn into a style / an emoji if printed as markup


def _cases(tmp: Path) -> dict[str, list[str]]:
    return {
        "run": ["run", "--model", str(tmp / MARKED), "--tasks", "mini_sblimp", "--output", str(tmp / "o")],
        "fit": ["fit", str(tmp / MARKED / "runs.csv"), "--out", str(tmp / "o")],
        "units": ["units", "fit-kmeans", str(tmp / MARKED), "--out", str(tmp / "k.npy")],
        "leaderboard": ["leaderboard", "add", str(tmp / MARKED / "results.json"), "--board", str(tmp / "b"),
                        "--name", "x"],
        "check": ["check", "--results", str(tmp / MARKED), "--baseline", str(tmp / "b")],
        "demo": ["demo", "--tasks", f"mini_{MARKED}", "--output", str(tmp / "o")],
        "plugins": ["plugins", MARKED],
        "text-prepare": ["text-prepare", MARKED, "--source", str(tmp / "a.csv"), "--data-root", str(tmp / "d")],
    }


@pytest.mark.parametrize("command", list(_cases(Path("/x"))))
def test_bad_input_is_one_literal_error_line_and_exit_2(command: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, _cases(tmp_path)[command])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)   # no traceback
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    assert MARKED in errors[0], errors[0]
    assert not list(tmp_path.glob("o/*"))   # nothing written
