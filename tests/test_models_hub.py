"""Hub ids through a local Hugging Face cache (built offline, huggingface_hub's layout), revisions that are
checked or refused, the README's checkpoint commands, and bad model input: one clear error, exit 2,
nothing written."""
from __future__ import annotations

import http.server
import json
import re
import shlex
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from _model_replicas import hub_cache, save_slamkit, save_slm_scaling, squash, units_task
from slmeval.cli import app
from slmeval.io import read_jsonl
from slmeval.models import ModelError, load_lm
from test_models_formats import K, save_twist

ROOT = Path(__file__).resolve().parents[1]
SLAM = "slprl/slam_scaled"
SLM = "tiagoCuervo/gslm-scaling-155m-65p3b"
COMMIT = "a" * 39 + "1"
COMMIT_SLM = "b" * 39 + "2"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub_models")
    return {"slam": save_slamkit(root / "slam", "qwen2", n_units=K, seed=5), "slm": save_slm_scaling(root / "slm", seed=6),
            "twist": save_twist(root / "twist")}


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub_task")
    units_task(folder, "hub_units", n_pairs=4, n_units=K, seed=3)
    return folder


@pytest.fixture
def offline_hub(tmp_path, monkeypatch, models):
    """HF_HOME/hub holding the two published ids, HF_HUB_OFFLINE=1 (nothing can be downloaded here)."""
    home = tmp_path / "hf_home"
    slam_snapshot = hub_cache(home / "hub", SLAM, models["slam"], COMMIT, refs=("main", "v1"))
    hub_cache(home / "hub", SLM, models["slm"], COMMIT_SLM)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return {"home": home, "slam_snapshot": slam_snapshot}


def run(*args: str):
    return CliRunner().invoke(app, ["run", *args, "--no-progress", "--no-cache"])


def test_hub_layout_matches_huggingface_hub(offline_hub):
    """The cache built here is what huggingface_hub itself reads (its own scan of the cache)."""
    from huggingface_hub import scan_cache_dir

    info = scan_cache_dir(offline_hub["home"] / "hub")
    repos = {r.repo_id: r for r in info.repos}
    assert set(repos) == {SLAM, SLM}
    (rev,) = repos[SLAM].revisions
    assert rev.commit_hash == COMMIT and rev.refs == frozenset({"main", "v1"})


def test_hub_id_offline_run_records_the_commit(offline_hub, models, task, tmp_path):
    out = tmp_path / "out"
    result = run("--model", SLAM, "--protocol", "slamkit", "--tasks", "hub_units", "--include-path", str(task),
                 "--output", str(out))
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["provenance"]["model_hub"] == {"repo_id": SLAM, "revision": "main", "commit_sha": COMMIT}
    assert results["config"]["model"] == SLAM and results["config"]["adapter"] == "slamkit"
    local = tmp_path / "local"
    assert run("--model", str(models["slam"]), "--protocol", "slamkit", "--tasks", "hub_units", "--include-path",
               str(task), "--output", str(local)).exit_code == 0
    # Same files, same identity, same scores as the local folder they came from.
    assert json.loads((local / "results.json").read_text())["provenance"]["model_sha256"] == \
        results["provenance"]["model_sha256"]
    assert [r["positive_score"] for r in read_jsonl(out / "samples_hub_units.jsonl")] == \
        [r["positive_score"] for r in read_jsonl(local / "samples_hub_units.jsonl")]


def test_revision_spellings_resolve_to_the_checked_commit(offline_hub):
    for model, args in ((f"{SLAM}@v1", None), (f"{SLAM}@{COMMIT}", None), (SLAM, "revision=v1"),
                        (None, f"pretrained={SLAM},revision={COMMIT}")):
        lm = load_lm(model, model_args=args)
        assert lm.hub["commit_sha"] == COMMIT and lm.adapter == "slamkit", (model, args)
    assert load_lm(f"{SLAM}@v1").hub["revision"] == "v1"
    # A local folder inside the cache is its snapshot: the commit is known, and a revision can be checked.
    snap = offline_hub["slam_snapshot"]
    assert load_lm(snap, model_args=f"revision={COMMIT}").hub == {"repo_id": SLAM, "revision": COMMIT,
                                                                  "commit_sha": COMMIT}
    with pytest.raises(ModelError, match="cannot be verified"):
        load_lm(snap, model_args="revision=" + "c" * 40)
    with pytest.raises(ModelError, match="names revision 'v1' but --model-args revision='main'"):
        load_lm(f"{SLAM}@v1", model_args="revision=main")
    with pytest.raises(ModelError, match="name different models"):
        load_lm(SLAM, model_args=f"pretrained={SLM}")


@pytest.mark.parametrize("model, args, expected", [
    (f"{SLAM}@v2", [], "slprl/slam_scaled at revision 'v2' is not in the Hugging Face cache"),
    (f"{SLAM}@{'c' * 40}", [], f"hf download slprl/slam_scaled --revision {'c' * 40}"),
    ("nobody/missing-model", [], "HF_HUB_OFFLINE=1 forbids downloading. Download it first: `hf download nobody/missing-model`"),
    ("unused", ["--model-args", "pretrained=nobody/missing-model"], "hf download nobody/missing-model"),
])
def test_offline_and_not_cached_is_one_error_with_the_download_command(offline_hub, task, tmp_path, model, args,
                                                                       expected):
    out = tmp_path / "out"
    if model == "unused":
        result = run(*args, "--tasks", "hub_units", "--include-path", str(task), "--output", str(out))
    else:
        result = run("--model", model, *args, "--tasks", "hub_units", "--include-path", str(task), "--output", str(out))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert squash(expected) in squash(result.output)
    assert not out.exists()


class _FakeHub(http.server.BaseHTTPRequestHandler):
    """Answers like the Hub API does for a gated repo, an unknown revision and an unknown repo
    (the X-Error-Code header huggingface_hub's hf_raise_for_status reads)."""

    def _answer(self) -> None:
        if "gated" in self.path:
            code, error = 403, "GatedRepo"
        elif "/revision/nope" in self.path:
            code, error = 404, "RevisionNotFound"
        else:
            code, error = 404, "RepoNotFound"
        body = json.dumps({"error": error}).encode()
        self.send_response(code)
        self.send_header("X-Error-Code", error)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def online_hub(tmp_path, monkeypatch):
    import huggingface_hub.constants

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    yield
    server.shutdown()


@pytest.mark.parametrize("model, expected", [
    (f"{SLAM}@nope", "revision 'nope' does not exist in slprl/slam_scaled on the Hub"),
    ("meta/gated-model", "the Hub repository meta/gated-model is gated"),
    ("nobody/missing-model", "no local folder nobody/missing-model, and no model nobody/missing-model on the Hub"),
])
def test_hub_errors_online(online_hub, task, tmp_path, model, expected):
    out = tmp_path / "out"
    result = run("--model", model, "--tasks", "hub_units", "--include-path", str(task), "--output", str(out))
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert squash(expected) in squash(result.output)
    assert not out.exists()


def test_local_folder_revision_cannot_be_verified(models, task, tmp_path):
    result = run("--model", str(models["slam"]), "--model-args", "revision=v1", "--tasks", "hub_units",
                 "--include-path", str(task), "--output", str(tmp_path / "out"))
    assert result.exit_code == 2 and squash("cannot be verified for the local directory") in squash(result.output)
    assert not (tmp_path / "out").exists()


def _readme_commands() -> dict[str, list[str]]:
    """The README's published-checkpoint commands, keyed by the model they run."""
    text = (ROOT / "README.md").read_text()
    block = text.split("Published checkpoints", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [shlex.split(c.replace("\\\n", " ")) for c in re.findall(r"^slmeval run .*?(?<!\\)$", block,
                                                                          re.M | re.S)]
    return {argv[argv.index("--model") + 1]: argv for argv in commands}


def test_readme_checkpoint_examples_run_on_replicas(offline_hub, models, task, tmp_path):
    """Each README command runs as written — model id, protocol (`recipe` = the family's), model args — with
    only the data swapped for a pre-tokenised task (so no tokenizer is needed)."""
    commands = _readme_commands()
    assert set(commands) == {SLAM, SLM, "~/ckpt/TWIST-350M"}
    replace = {"--tasks": "hub_units", "--data-root": str(tmp_path)}
    for model, argv in commands.items():
        args = argv[2:]
        for i, arg in enumerate(args[:-1]):
            if arg in replace:
                args[i + 1] = replace[arg]
            elif arg == "--output":
                args[i + 1] = str(tmp_path / Path(args[i + 1]).name)
            elif arg == "--model" and model.startswith("~"):
                args[i + 1] = str(models["twist"])
        assert "--tokenizer" not in args    # the family recipe names it (tests/test_recipes.py runs one)
        result = run(*args, "--include-path", str(task))
        assert result.exit_code == 0, (model, result.output)
        out = Path(args[args.index("--output") + 1])
        results = json.loads((out / "results.json").read_text())
        expected = {SLAM: ("slamkit", "slamkit"), SLM: ("slm_scaling", "cuervo"),
                    "~/ckpt/TWIST-350M": ("hf", "slmeval")}[model]
        assert (results["config"]["adapter"], results["config"]["protocol"]["name"]) == expected
