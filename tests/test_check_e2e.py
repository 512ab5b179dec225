"""End to end: `slmeval run` on a tiny model, then `slmeval check` and `slmeval leaderboard add` on its output."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from slmeval.cli import app

N_PAIRS = 40


def _write_task(folder: Path, pairs: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    (folder / "e2e_pairs.yaml").write_text(f"name: e2e_pairs\nfamily: pairs\nsource: units_jsonl\n"
                                           f"path: {folder / 'pairs.jsonl'}\nversion: 1\n")


def _run(model: Path, task_dir: Path, out: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--model", str(model), "--tasks", "e2e_pairs", "--include-path",
                                      str(task_dir), "--output", str(out), "--no-cache", "--no-progress"])
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_run_then_check_and_leaderboard(tiny_llama_dir: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pairs = [{"id": f"p{i:03d}", "positive": rng.integers(0, 16, int(rng.integers(4, 10))).tolist(),
              "negative": rng.integers(0, 16, int(rng.integers(4, 10))).tolist()} for i in range(N_PAIRS)]
    _write_task(tmp_path / "task_a", pairs)
    _run(tiny_llama_dir, tmp_path / "task_a", tmp_path / "base")
    _run(tiny_llama_dir, tmp_path / "task_a", tmp_path / "same")
    runner = CliRunner()
    same = runner.invoke(app, ["check", "--results", str(tmp_path / "same"), "--baseline", str(tmp_path / "base"),
                               "--format", "json"])
    assert same.exit_code == 0, same.output
    assert json.loads(same.output)["tasks"][0]["p_value"] == 1.0

    # Swap the two sides of every item the baseline got right: same item ids and keys, so the runs
    # still pair, but each of those items is now lost -> a large, significant drop.
    base_samples = [json.loads(line) for line in (tmp_path / "base" / "samples_e2e_pairs.jsonl").read_text().splitlines()]
    right = {s["id"] for s in base_samples if s["correct"] == 1.0}
    assert 8 <= len(right) <= N_PAIRS - 8
    swapped = [dict(p, positive=p["negative"], negative=p["positive"]) if p["id"] in right else p for p in pairs]
    _write_task(tmp_path / "task_b", swapped)
    _run(tiny_llama_dir, tmp_path / "task_b", tmp_path / "worse")
    worse = runner.invoke(app, ["check", "--results", str(tmp_path / "worse" / "results.json"),
                                "--baseline", str(tmp_path / "base"), "--format", "json"])
    assert worse.exit_code == 1, worse.output
    (task,) = json.loads(worse.output)["tasks"]
    assert task["n_lost"] == len(right) and task["n_gained"] == 0 and task["regressed"]
    assert any("data_sha256 differs" in w for w in task["warnings"])

    # The real results.json is accepted by the leaderboard schema.
    board = tmp_path / "board"
    shutil.copytree(Path(__file__).resolve().parents[1] / "leaderboard", board,
                    ignore=shutil.ignore_patterns("submissions"))
    added = runner.invoke(app, ["leaderboard", "add", str(tmp_path / "base"), "--name", "tiny llama",
                                "--board", str(board)])
    assert added.exit_code == 0, added.output
    assert "unofficial data" in added.output
