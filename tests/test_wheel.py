"""The wheel: built from a copy of this checkout, installed into a fresh venv, used from outside the
repository — `slmeval tasks` finds the built-in tasks (package data) and `slmeval demo` runs on the
bundled data. Offline and fast: no build isolation, `--no-deps`, and the fresh venv sees this venv's
dependencies through a .pth line (but not its editable slmeval: .pth files are only processed in
site-packages folders themselves, so the dev install's import hook never runs there)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".git", ".venv", "out", ".cache", "build", "dist", "*.egg-info", "__pycache__",
                              ".pytest_cache", ".whl", ".gl")


def _run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=SKIP)       # never build inside the checkout (build/, egg-info)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(root / "dist"), str(src)], cwd=root)
    (wheel,) = (root / "dist").glob("slmeval-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=root).stdout.strip())
    (site / "_slmeval_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=root)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {"wheel": wheel, "venv": venv, "site": site, "python": python, "env": env, "cwd": root}


@pytest.mark.slow
def test_wheel_carries_tasks_and_bundled_data(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    shipped = [p.relative_to(REPO / "tasks").as_posix() for p in (REPO / "tasks").rglob("*")
               if p.suffix in (".yaml", ".py") or p.name == "README.md"]       # a folder per benchmark
    assert len(shipped) >= 25 and any("/" in s for s in shipped)
    assert all(f"slmeval/tasks/{s}" in names for s in shipped), [s for s in shipped if f"slmeval/tasks/{s}" not in names]
    assets = [p.relative_to(REPO).as_posix() for p in (REPO / "audio_assets").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts]
    missing = [a for a in assets if f"slmeval/{a}" not in names]
    assert not missing, f"bundled files missing from the wheel: {missing[:5]} ({len(missing)})"
    text_tasks = [p.name for p in (REPO / "slmeval/text/tasks").iterdir() if p.suffix in (".yaml", ".py")]
    assert len(text_tasks) > 80 and all(f"slmeval/text/tasks/{n}" in names for n in text_tasks)   # slmeval text


@pytest.mark.slow
def test_installed_wheel_lists_tasks_and_runs_the_demo(installed):
    venv, env, cwd = installed["venv"], installed["env"], installed["cwd"]
    where = _run([str(installed["python"]), "-c", "import slmeval; print(slmeval.__file__)"], cwd=cwd, env=env)
    assert Path(where.stdout.strip()).is_relative_to(installed["site"])      # the wheel, not the checkout
    listing = _run([str(venv / "bin" / "slmeval"), "tasks"], cwd=cwd, env={**env, "COLUMNS": "400"}).stdout
    flat = " ".join(listing.split())
    for name in ("sblimp", "sblimp_test", "sstorycloze", "tstorycloze", "mini_sblimp", "mini_ms_sstorycloze"):
        assert f" {name} " in flat or f" {name} [mini]" in flat
    mini = _run([str(installed["python"]), "-c", "from slmeval.task_loader.registry import all_tasks; "
                 "print(all_tasks()['mini_sblimp'].resolve_path(None))"], cwd=cwd, env=env).stdout.strip()
    assert Path(mini) == installed["site"] / "slmeval" / "audio_assets" / "mini_sblimp" and Path(mini).is_dir()
    out = cwd / "demo_out"
    _run([str(venv / "bin" / "slmeval"), "demo", "--tasks", "mini_ms_sstorycloze", "--output", str(out),
          "--no-cache", "--no-progress"], cwd=cwd, env=env, timeout=600)
    results = json.loads((out / "results.json").read_text())
    assert results["results"]["mini_ms_sstorycloze"]["n_pairs"] == 48
    assert results["results"]["mini_ms_sstorycloze"]["n_voices"] == 4
    assert Path(results["configs"]["mini_ms_sstorycloze"]["origin"]).is_relative_to(installed["site"])
