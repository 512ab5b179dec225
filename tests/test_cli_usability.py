"""The command line as an lm-eval user meets it: lm-eval's option spellings, `--version`, what `tasks` and
`plugins` show, tables at full width in CI logs, no tqdm bars of transformers, `run` without `--output`,
and `convention=twist` on a checkpoint without an offset."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import slmeval
from _data_helpers import make_units_jsonl
from conftest import N_UNITS
from slmeval.cli import app

ROOT = Path(__file__).resolve().parents[1]
LONG = "a_task_name_long_enough_to_be_cut_in_an_80_column_log"


@pytest.fixture(scope="module")
def units_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_units")
    make_units_jsonl(root / "units.jsonl", n_pairs=5, n_units=N_UNITS, seed=7)
    tasks = tmp_path_factory.mktemp("cli_tasks")
    (tasks / "t.yaml").write_text(f"- {{name: {LONG}, family: pairs, source: units_jsonl, path: units.jsonl}}\n")
    return root, tasks


def _run(args: list[str], **env: str):
    return CliRunner().invoke(app, args, env=env or None)


def test_lm_eval_spellings_are_aliases(units_world, tiny_llama_dir, tmp_path):
    root, tasks = units_world
    common = ["run", "--model", str(tiny_llama_dir), "--tasks", LONG, "--data-root", str(root), "--no-progress"]
    ours = _run(common + ["--model-args", "offset=3", "--batch-size", "2", "--output", str(tmp_path / "a"),
                          "--include-path", str(tasks)])
    theirs = _run(common + ["--model_args", "offset=3", "--batch_size", "2", "--output_path", str(tmp_path / "b"),
                            "--include_path", str(tasks), "--log_samples"])
    assert ours.exit_code == 0, ours.output
    assert theirs.exit_code == 0, theirs.output
    a, b = (json.loads((tmp_path / d / "results.json").read_text()) for d in "ab")
    assert b["config"]["batch_size"] == 2 and b["config"]["model_args"] == {"offset": "3"}
    assert a["results"] == b["results"]
    assert (tmp_path / "b" / f"samples_{LONG}.jsonl").is_file()
    said = " ".join(theirs.output.split())
    assert "--log_samples: slmeval always writes the samples" in said
    assert "--log_samples" not in ours.output


def test_version():
    result = _run(["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"slmeval {slmeval.__version__}"


def test_run_without_output_says_nothing_was_written(units_world, tiny_llama_dir, tmp_path, monkeypatch):
    root, tasks = units_world
    monkeypatch.chdir(tmp_path)
    result = _run(["run", "--model", str(tiny_llama_dir), "--tasks", LONG, "--data-root", str(root),
                   "--include-path", str(tasks), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "nothing was written: pass --output DIR" in " ".join(result.output.split())
    assert "results written" not in result.output
    assert not list(tmp_path.iterdir())


def test_convention_twist_without_offset_says_what_is_missing(tmp_path, tiny_llama_dir):
    import shutil

    model = tmp_path / "no_offset"
    shutil.copytree(tiny_llama_dir, model)
    cfg = json.loads((model / "config.json").read_text())
    del cfg["offset"]
    (model / "config.json").write_text(json.dumps(cfg))
    # (a tokenizer is given: with none, the audio task's missing tokenizer is the error, before the model loads)
    result = _run(["run", "--model", str(model), "--tasks", "mini_sblimp", "--model-args", "convention=twist",
                   "--tokenizer", str(ROOT / "audio_assets" / "demo_tokenizer")])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "convention=twist reads the unit offset from config.json's `offset` key" in message
    assert "no --model-args offset/convention was given" not in message   # the old, false claim
    # and on a TWIST checkpoint (config.json carries offset) the documented spelling works
    from slmeval.models import load_lm

    lm = load_lm(tiny_llama_dir, model_args="convention=twist")
    assert lm.mapping.offset == 3 and lm.mapping.sources["offset"] == "config.json:offset"


def _cells(output: str) -> list[list[str]]:
    """Rows of a rich table printed wide enough not to fold: the cell texts between the box bars."""
    return [[c.strip() for c in line.strip().strip("│┃").split("│")] for line in output.splitlines()
            if line.startswith("│")]


def test_tasks_show_how_to_get_and_mark_mini_tasks():
    result = _run(["tasks"], COLUMNS="5000")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.startswith("┃"))
    columns = [c.strip() for c in header.strip("┃").split("┃")]
    assert "how to get the data" in columns
    rows, name = {}, None
    for cells in _cells(result.output):
        if cells[0] and cells[0] != "[mini]":
            name = cells[0]
            rows[name] = {"cells": cells, "mini": False}
        elif cells[0] == "[mini]":
            rows[name]["mini"] = True
    mini = {n for n, r in rows.items() if r["mini"]}
    builtin = {p.stem: p for p in (ROOT / "tasks").rglob("*.yaml") if not p.name.startswith("_")}   # a folder per benchmark
    expected_mini = {n for n, p in builtin.items() if yaml.safe_load(p.read_text()).get("mini")}
    assert expected_mini and mini == expected_mini
    how = columns.index("how to get the data")
    sblimp_file = yaml.safe_load((ROOT / "tasks" / "sblimp" / "sblimp.yaml").read_text())
    assert rows["sblimp"]["cells"][how] == sblimp_file["how_to_get"]
    assert "[mini]" in result.output.splitlines()[0]          # the title explains the mark, as text


def test_plugins_have_whole_descriptions():
    result = _run(["plugins"], COLUMNS="5000")
    assert result.exit_code == 0, result.output
    rows = {(c[0], c[1]): c[3] for c in _cells(result.output) if len(c) == 4}
    assert rows, result.output
    for (kind, name), what in rows.items():
        assert what, f"{kind} {name}: empty description"
        # a whole sentence or a settings list: never a line cut mid-sentence
        assert what.endswith((".", ")")) or kind in ("protocols", "tokenizers"), f"{kind} {name}: {what!r}"
        assert what.count("(") == what.count(")") and what.count("`") % 2 == 0, f"{kind} {name}: {what!r}"
    assert rows[("models", "spiritlm")].startswith("SpiritLM checkpoints")
    assert rows[("metrics", "zerospeech_lexical")].endswith("the leaderboard's second number.")
    assert rows[("exports", "zerospeech")].endswith("the split is the task's `split` reader option.")


def test_first_sentence_rule():
    from slmeval.plugins import first_sentence

    assert first_sentence("Reads the thing.\n\nMore.") == "Reads the thing."
    assert first_sentence("A list of\nwrapped words (e.g. this. one) ends here. Next.") == \
        "A list of wrapped words (e.g. this. one) ends here."
    assert first_sentence("Keys `a.b c` stay whole. Then") == "Keys `a.b c` stay whole."
    assert first_sentence("No full stop at all") == "No full stop at all"


def test_piped_tables_are_full_width_and_transformers_draws_no_bars(units_world, tiny_llama_dir, tmp_path):
    """A CI log: stdout and stderr are pipes, no COLUMNS. The table keeps whole task names, and the
    transformers "Loading weights" tqdm bar does not appear among slmeval's output."""
    root, tasks = units_world
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TERM")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-m", "slmeval", "run", "--model", str(tiny_llama_dir), "--tasks", LONG,
                           "--data-root", str(root), "--include-path", str(tasks), "--output", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"│ {LONG} " in proc.stdout, proc.stdout
    assert "…" not in proc.stdout
    assert "Loading weights" not in proc.stderr and not re.search(r"\d+it/s\]|\|\s*\d+/\d+ \[", proc.stderr), \
        proc.stderr


def test_output_path_json_file_is_refused(tmp_path):
    # lm-eval takes `--output_path DIR/file.json`; slmeval writes a folder and says which one to name
    result = _run(["run", "--model", "m", "--tasks", "mini_sblimp", "--output_path", str(tmp_path / "res.json")])
    assert result.exit_code == 2
    assert f"name the folder, e.g. --output {tmp_path / 'res'}" in " ".join(result.output.split())
    assert not (tmp_path / "res.json").exists()
