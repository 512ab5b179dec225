"""docs/examples/slmeval-regression.yml runs as written: every slmeval command and option it uses exists,
it installs from a real source with no placeholder and no apt packages, its fetch step downloads the
tokenizer preset it names into the folders it caches (run here against the stand-in Hub) after which
evaluation needs no network, it caches pip, and its evaluate + compare steps run (on slmeval's bundled
demo model standing in for the training repository's checkpoint)."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml

from _hub_server import hub  # noqa: F401  (fixture)
from slmeval.cli import app
from test_tokenizer_presets import assets, preset  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "docs" / "examples" / "slmeval-regression.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _job(workflow: dict) -> dict:
    (job,) = workflow["jobs"].values()
    return job


def _step(workflow: dict, name_start: str) -> dict:
    return next(s for s in _job(workflow)["steps"] if s.get("name", "").startswith(name_start))


def _commands(script: str) -> list[list[str]]:
    """Shell lines of a `run:` script (continuations joined, comments dropped), split into words."""
    joined = re.sub(r"\\\n\s*", " ", script)
    return [shlex.split(line, comments=True) for line in joined.splitlines() if shlex.split(line, comments=True)]


def _click_options(words: list[str]):
    """The click command an `slmeval a b ...` line reaches, and the option names it passes."""
    command = typer.main.get_command(app)
    rest = words[1:]
    while hasattr(command, "commands") and rest and rest[0] in command.commands:   # groups (typer's own click)
        command, rest = command.commands[rest[0]], rest[1:]
    return command, [w.split("=", 1)[0] for w in rest if w.startswith("-")]


def test_every_slmeval_command_and_option_exists(workflow):
    seen = 0
    for step in _job(workflow)["steps"]:
        for words in _commands(step.get("run", "")):
            if words[0] != "slmeval":
                continue
            command, options = _click_options(words)
            assert not hasattr(command, "commands"), f"{step['name']}: {words[:3]} is not a command"
            known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
            assert set(options) <= known, f"{step['name']}: unknown options {set(options) - known}"
            seen += 1
    assert seen == 3        # units fetch, run, check


def test_install_source_is_real_and_no_apt(workflow):
    assert "OWNER" not in WORKFLOW.read_text()
    job = _job(workflow)
    programs = {w[0] for s in job["steps"] for w in _commands(s.get("run", ""))}
    assert not programs & {"apt-get", "apt", "sudo"}, programs
    checkout = job["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@") and checkout["with"]["submodules"] is True
    install = _commands(_step(workflow, "Install slmeval")["run"])
    targets = [w[-1] for w in install if w[:4] == ["python", "-m", "pip", "install"]]
    assert "./third_party/slmeval" in targets        # the submodule the header tells how to add
    # what the submodule holds is what this repository is: a pip-installable project shipping the mini tasks
    assert (ROOT / "pyproject.toml").is_file() and (ROOT / "setup.py").is_file()
    minis = {t for t in job["env"]["TASKS"].split(",")}
    assert all((ROOT / "tasks" / "mini" / f"{t}.yaml").is_file() for t in minis)   # tasks/<benchmark>/


def test_caches_pip_the_tokenizer_and_the_unit_cache(workflow):
    from slmeval.units import PRESETS

    job = _job(workflow)
    setup = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["cache"] == "pip"
    assert setup["with"]["cache-dependency-path"] == "third_party/slmeval/pyproject.toml"
    cache = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache@"))
    assert set(cache["with"]["path"].split()) == {job["env"]["SLMEVAL_CACHE"], job["env"]["HF_HUB_CACHE"]}
    assert "HF_HOME" not in job["env"]          # HF_HOME also holds a login token: never put in a shared cache
    fetch = _step(workflow, "Fetch the speech tokenizer")
    assert fetch["if"] == f"steps.{cache['id']}.outputs.cache-hit != 'true'"
    # the preset, fetched by the fetch step and used by the run step; no hand-made download or conversion left
    assert job["env"]["TOKENIZER"] == "mhubert-25hz-l11-km500" and job["env"]["TOKENIZER"] in PRESETS.names()
    assert _commands(fetch["run"]) == [["slmeval", "units", "fetch", "--tokenizer", "$TOKENIZER"]]
    (run,) = _commands(_step(workflow, "Evaluate")["run"])
    assert run[run.index("--tokenizer") + 1] == "$TOKENIZER"
    assert _step(workflow, "Evaluate")["env"]["HF_HUB_OFFLINE"] == "1"


def test_fetch_step_fills_the_cached_folders_and_evaluation_then_needs_no_network(workflow, hub, preset, assets,
                                                                                 tmp_path, monkeypatch):  # noqa: F811
    """The fetch step's command, with the job's HF_HOME and SLMEVAL_CACHE (relative, in a stand-in
    repository), against the stand-in Hub serving the preset's files: everything lands under the two folders
    the cache step saves, and with HF_HUB_OFFLINE=1 (the Evaluate step) the preset builds from them with no
    request and gives the hand-wired tokenizer's units."""
    from typer.testing import CliRunner

    from slmeval.units import load_tokenizer
    from test_tokenizer_presets import WAVS, units

    job = _job(workflow)
    repo = tmp_path / "training-repo"
    repo.mkdir()
    monkeypatch.chdir(repo)
    for var in ("HF_HUB_CACHE", "SLMEVAL_CACHE", "TOKENIZER"):   # the job's relative folders, not the fixtures'
        monkeypatch.setenv(var, job["env"][var])
    (words,) = _commands(_step(workflow, "Fetch the speech tokenizer")["run"])
    out = CliRunner().invoke(app, [os.path.expandvars(w) for w in words[1:]])
    assert out.exit_code == 0 and out.output.startswith(f"ready: {job['env']['TOKENIZER']} (16 units"), out.output
    cached = [repo / job["env"]["HF_HUB_CACHE"], repo / job["env"]["SLMEVAL_CACHE"]]
    files = [p for p in repo.rglob("*") if p.is_file()]
    assert files and all(any(f.is_relative_to(c) for c in cached) for f in files), files
    assert any(cached[0].glob("models--slprl--mhubert-base-25hz/snapshots/*/config.json"))
    assert list((repo / job["env"]["SLMEVAL_CACHE"] / "downloads").rglob("*.npy"))
    bad = CliRunner().invoke(app, ["units", "fetch", "--tokenizer", "mhubert-25hz-l11-km5000"])   # a typo
    assert bad.exit_code == 2 and "is neither a preset (" in bad.output and "Traceback" not in bad.output
    hub.offline(monkeypatch)
    served = len(hub.log)
    tok = load_tokenizer(job["env"]["TOKENIZER"])
    assert len(hub.log) == served
    assert units(tok) == units(load_tokenizer(assets["hand"])) and len(WAVS) == 2


@pytest.mark.slow
def test_evaluate_and_compare_steps_run_as_written(workflow, tmp_path):
    """The two slmeval steps, run by bash as GitHub runs them, in a stand-in repository: the demo model
    as $CHECKPOINT, the demo tokenizer as $TOKENIZER, one mini task (for time), and the baseline made
    by the same step. The check then passes and writes its report and GitHub annotations."""
    job = _job(workflow)
    env = {**os.environ, **job["env"], "CHECKPOINT": str(ROOT / "audio_assets" / "demo_model"),
           "TOKENIZER": str(ROOT / "audio_assets" / "demo_tokenizer"), "TASKS": "mini_tstorycloze",
           "SLMEVAL_CACHE": str(tmp_path / "units"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
           "PYTHONPATH": str(ROOT), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    repo = tmp_path / "training-repo"
    repo.mkdir()

    def step(name: str) -> subprocess.CompletedProcess:
        script = _step(workflow, name)["run"]
        return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=repo,
                              env={**env, **_step(workflow, name).get("env", {})}, capture_output=True, text=True,
                              timeout=600)

    first = step("Evaluate")
    assert first.returncode == 0, first.stderr
    shutil.copytree(repo / "out" / "slmeval", repo / "baselines" / "slmeval")
    # the units went to $SLMEVAL_CACHE, the folder the workflow caches (120 files of mini_tstorycloze)
    assert len([p for p in (tmp_path / "units").rglob("*") if p.is_file()]) >= 120
    check = step("Compare with the committed baseline")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith("::notice title=slmeval check%3A mini_tstorycloze::mini_tstorycloze: no "
                                   "significant change. accuracy 71.67 -> 71.67")
    assert "finer than this task resolves" not in check.stdout       # 60 pairs: 1.67 points < 2.5
    assert (repo / "out" / "slmeval" / "check.json").is_file()
    assert "slmeval check passed" in (tmp_path / "summary.md").read_text()
