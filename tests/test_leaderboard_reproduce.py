"""`slmeval leaderboard reproduce`: the board re-runs the submitted model (a local folder it holds, or a Hub
id at the recorded commit) and marks the entry reproduced only when every per-item credit matches; a
consistent forgery — samples rewritten so that every number follows — is caught here and nowhere else.
The page shows reproduced entries; `slmeval check --board` says which runs were reproduced."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _hub_server import hub  # noqa: E402,F401  (fixture)
from _model_replicas import hub_cache  # noqa: E402
from test_tokenizer_presets import NAME as PRESET_NAME, assets, preset  # noqa: E402,F401  (fixtures)

from slmeval.cli import app
from slmeval.leaderboard import Board
from slmeval.leaderboard.ledger import Ledger
from slmeval.task_loader.registry import Grouping
from slmeval.results.verify import metrics_from_samples

REPO = Path(__file__).resolve().parents[1]
TASK = "r_pairs"
N_PAIRS = 24
HUB_ID, COMMIT = "board-test/tiny-slm", "c" * 39 + "3"


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repro_task")
    rng = np.random.default_rng(11)
    pairs = [{"id": f"p{i:02d}", "positive": rng.integers(0, 16, int(rng.integers(4, 9))).tolist(),
              "negative": rng.integers(0, 16, int(rng.integers(4, 9))).tolist()} for i in range(N_PAIRS)]
    (root / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    (root / "tasks").mkdir()
    (root / "tasks" / "r.yaml").write_text(f"name: {TASK}\nfamily: pairs\nsource: units_jsonl\n"
                                           f"path: {root / 'pairs.jsonl'}\n")
    return root / "tasks"


def _run(model: str, task_dir: Path, out: Path, *extra: str) -> Path:
    res = _cli("run", "--model", model, "--tasks", TASK, "--include-path", str(task_dir), "--output", str(out),
               "--no-cache", "--no-progress", *extra)
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def local_run(tiny_llama_dir, task_dir, tmp_path_factory) -> Path:
    return _run(str(tiny_llama_dir), task_dir, tmp_path_factory.mktemp("repro_local") / "run")


@pytest.fixture()
def board(tmp_path: Path) -> Board:
    root = tmp_path / "board"
    shutil.copytree(REPO / "leaderboard", root, ignore=shutil.ignore_patterns("submissions"))
    return Board(root)


def _add(board: Board, run: Path, name: str) -> str:
    res = _cli("leaderboard", "add", str(run), "--name", name, "--board", str(board.root))
    assert res.exit_code == 0, res.output
    return next(p.name for p in board.submissions_dir.iterdir() if not p.name.startswith(".")
                and json.loads((p / "submission.json").read_text())["name"] == name)


def _reproduce(board: Board, entry: str, task_dir: Path, *extra: str):
    return _cli("leaderboard", "reproduce", entry, "--include-path", str(task_dir), "--board", str(board.root), *extra)


def test_a_local_model_is_reproduced_shown_and_reported_by_check(board, local_run, tiny_llama_dir, task_dir,
                                                                  tmp_path):
    slug = _add(board, local_run, "tiny llama")
    res = _reproduce(board, slug, task_dir)            # a local folder on the submitter's machine: we need ours
    assert res.exit_code == 2 and "pass --model with a folder holding the same files" in res.output
    assert _cli("leaderboard", "build", "--out", str(tmp_path / "before"), "--board", str(board.root)).exit_code == 0
    res = _reproduce(board, "Tiny Llama", task_dir, "--model", str(tiny_llama_dir))   # by name, case-insensitive
    assert res.exit_code == 0, res.output
    assert f"reproduced {slug}: all {N_PAIRS} per-item credits match" in res.output
    (accepted, reproduced) = Ledger.read(board.root).records
    assert (accepted["event"], reproduced["event"], reproduced["slug"]) == ("accepted", "reproduced", slug)
    assert reproduced["results_sha256"] == accepted["results_sha256"] and reproduced["items"] == N_PAIRS
    # the page and the exports show it; a build before the reproduction showed none
    assert 'class="badge reproduced" title' not in (tmp_path / "before" / "index.html").read_text()
    res = _cli("leaderboard", "build", "--out", str(tmp_path / "site"), "--board", str(board.root))
    assert res.exit_code == 0 and Ledger.read(board.root).head in res.output
    html = (tmp_path / "site" / "index.html").read_text()
    assert 'class="badge reproduced" title="re-run by the board on' in html
    (row,) = [e for e in json.loads((tmp_path / "site" / "leaderboard.json").read_text())["entries"]
              if e["kind"] == "consistent"]
    assert row["reproduced"] == reproduced["at"]
    # check: each run says whether it was reproduced or only consistent
    # same scores, a results.json not on the board: another batch size makes its bytes differ even when both runs
    # finish within the same second (the recorded date would otherwise make it the submitted file, byte for byte)
    other = _run(str(tiny_llama_dir), task_dir, tmp_path / "other", "--batch-size", "3")
    assert (other / "results.json").read_bytes() != (local_run / "results.json").read_bytes()
    res = _cli("check", "--results", str(other), "--baseline", str(local_run), "--board", str(board.root))
    assert res.exit_code == 0, res.output
    assert f"BASELINE run: reproduced (board entry {slug}: re-run by the board on" in res.output
    assert "NEW run: consistent (its numbers follow from its samples); not an entry of the board" in res.output
    res = _cli("check", "--results", str(other), "--baseline", str(local_run))
    assert "BASELINE run: consistent" in res.output and "not looked up on a board (--board)" in res.output
    res = _cli("check", "--results", str(other), "--baseline", str(local_run), "--board", str(tmp_path / "nope"))
    assert res.exit_code == 2 and "nope: not a leaderboard folder" in res.output


def _forge_consistently(run: Path, dest: Path) -> tuple[Path, list[str]]:
    """The forgery no file check can catch: for every wrong pair, swap the two sides' log-probs, counts and
    scores, so every score, credit and metric follows from the samples (items unchanged)."""
    shutil.copytree(run, dest)
    path = dest / f"samples_{TASK}.jsonl"
    samples = [json.loads(line) for line in path.read_text().splitlines()]
    flipped = []
    for s in samples:
        if s["correct"] == 0.0:
            for a, b in (("positive_logprob", "negative_logprob"), ("positive_n", "negative_n"),
                         ("positive_score", "negative_score")):
                s[a], s[b] = s[b], s[a]
            s["correct"] = 1.0
            flipped.append(s["id"])
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    results = json.loads((dest / "results.json").read_text())
    results["results"][TASK], _ = metrics_from_samples("pairs", Grouping(), samples)
    (dest / "results.json").write_text(json.dumps(results, indent=2))
    return dest, flipped


def test_a_consistent_forgery_is_accepted_as_consistent_but_not_reproduced(board, local_run, tiny_llama_dir,
                                                                           task_dir, tmp_path):
    forged, flipped = _forge_consistently(local_run, tmp_path / "forged")
    assert flipped and json.loads((forged / "results.json").read_text())["results"][TASK]["acc"] > \
        json.loads((local_run / "results.json").read_text())["results"][TASK]["acc"]
    slug = _add(board, forged, "forged")                # every number follows: a file cannot prove more
    res = _reproduce(board, slug, task_dir, "--model", str(tiny_llama_dir))
    assert res.exit_code == 1, res.output
    assert f"NOT reproduced {slug}" in res.output and f"{len(flipped)} difference(s)" in res.output
    assert f"{TASK} id {flipped[0]!r}: submitted credit 1.0, re-run credit 0.0" in res.output
    assert [r["event"] for r in Ledger.read(board.root).records] == ["accepted"]     # nothing recorded


def test_another_model_folder_is_not_the_submitted_model(board, local_run, task_dir, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM
    import torch

    torch.manual_seed(1)          # the fixture's architecture and config, other weights
    cfg = LlamaConfig(vocab_size=19, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=512, pad_token_id=0, bos_token_id=1,
                      eos_token_id=2, tie_word_embeddings=False)
    other = tmp_path / "other_model"
    LlamaForCausalLM(cfg).save_pretrained(other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "offset": 3}))
    slug = _add(board, local_run, "tiny llama")
    res = _reproduce(board, slug, task_dir, "--model", str(other))
    assert res.exit_code == 1 and "model: the files loaded hash to" in res.output
    assert "(not the submitted model)" in res.output


def test_a_hub_model_is_re_run_at_the_recorded_commit(board, tiny_llama_dir, task_dir, tmp_path, monkeypatch):
    home = tmp_path / "hf_home"
    hub_cache(home / "hub", HUB_ID, tiny_llama_dir, COMMIT)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")          # nothing is downloaded: the commit is in the cache
    run = _run(HUB_ID, task_dir, tmp_path / "hub_run")
    assert json.loads((run / "results.json").read_text())["provenance"]["model_hub"]["commit_sha"] == COMMIT
    slug = _add(board, run, "hub tiny")
    res = _reproduce(board, slug, task_dir)
    assert res.exit_code == 0 and f"({HUB_ID}@{COMMIT})" in res.output, res.output
    assert Ledger.read(board.root).records[-1]["model"] == f"{HUB_ID}@{COMMIT}"


def test_reproduce_refuses_an_unknown_entry(board, task_dir):
    res = _reproduce(board, "nobody", task_dir)
    assert res.exit_code == 2 and "ENTRY 'nobody': no accepted submission" in res.output


def test_the_recorded_tokenizer_is_rebuilt_when_none_is_given_or_refused_clearly(board, tiny_llama_dir, tmp_path,
                                                                                hub, preset, assets):  # noqa: F811
    """An audio run made with `--tokenizer PRESET` (the preset served by the stand-in Hub) is reproduced without
    --tokenizer: the preset is rebuilt from results.json `provenance.setup.tokenizer`, and the re-run's tokenizer
    identity equals the recorded one. A record that cannot be rebuilt (no build record, a preset not installed
    here, a spec naming files on the submitter's machine) is one error naming what to pass."""
    from _data_helpers import make_paired

    tasks = tmp_path / "audio_tasks"
    make_paired(tasks / "paired", sep="_", n_pairs=4)
    (tasks / "a.yaml").write_text('- {name: r_audio, family: pairs, source: paired_folder, path: ./paired, '
                                  'options: {sep: "_"}}\n')
    res = _cli("run", "--model", str(tiny_llama_dir), "--tasks", "r_audio", "--include-path", str(tasks),
               "--tokenizer", PRESET_NAME, "--output", str(tmp_path / "run"), "--no-cache", "--no-progress")
    assert res.exit_code == 0, res.output
    recorded = json.loads((tmp_path / "run" / "results.json").read_text())
    assert recorded["provenance"]["setup"]["tokenizer"]["source"]["preset"] == PRESET_NAME
    slug = _add(board, tmp_path / "run", "audio llama")
    res = _reproduce(board, slug, tasks, "--model", str(tiny_llama_dir), "--out", str(tmp_path / "again"))
    assert res.exit_code == 0 and f"reproduced {slug}: all 4 per-item credits match" in res.output, res.output
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert again["config"]["tokenizer"] == recorded["config"]["tokenizer"]
    assert again["provenance"]["setup"]["tokenizer"]["spec"] == PRESET_NAME

    def edited(name: str, change) -> tuple[Board, str]:
        """The run with its record changed, accepted on a board of its own (one board refuses a duplicate)."""
        run = tmp_path / name
        shutil.copytree(tmp_path / "run", run)
        results = json.loads((run / "results.json").read_text())
        change(results["provenance"]["setup"])
        (run / "results.json").write_text(json.dumps(results, indent=2))
        own = Board(tmp_path / f"board-{name}")
        shutil.copytree(board.root, own.root, ignore=shutil.ignore_patterns("submissions", "ledger*"))
        return own, _add(own, run, name)

    cases = [
        (edited("no-record", lambda s: s.pop("tokenizer")), "records the tokenizer's identity (kind 'hubert') but "
                                                              "not how it was built (provenance.setup.tokenizer"),
        (edited("other-preset", lambda s: s["tokenizer"]["source"].update(preset="gslm-not-here:input_pad=40")),
         "the preset 'gslm-not-here:input_pad=40', which is not installed here"),
        (edited("local-spec", lambda s: s["tokenizer"].update(spec="hubert:model=/submitter/hubert,layer=2,"
                                                                   "centroids=/submitter/km.npy", source={})),
         "the tokenizer the run recorded ('hubert:model=/submitter/hubert,layer=2,centroids=/submitter/km.npy') "
         "cannot be rebuilt here (/submitter/km.npy: centroid file not found)"),
        (edited("an-object", lambda s: s["tokenizer"].update(spec="MyTokenizer", source={}, **{"from": "python"})),
         "the run's tokenizer 'MyTokenizer' came from python, which cannot be rebuilt from the record"),
    ]
    for (own, entry), words in cases:
        res = _reproduce(own, entry, tasks, "--model", str(tiny_llama_dir))
        assert res.exit_code == 2 and words in res.output and "pass --tokenizer with the one you hold" in res.output, \
            res.output
        assert "Traceback" not in res.output
        assert [r["event"] for r in Ledger.read(own.root).records] == ["accepted"]
