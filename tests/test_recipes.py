"""One command from a checkpoint id to comparable numbers: the stand-in Hub serves a slamkit-format
checkpoint and the tokenizer preset; `slmeval run --model ORG/NAME --tasks TASK` (a local audio task) with no
tokenizer or protocol flag gives exactly the numbers of the hand-wired command (local folders, the hubert spec with
slamkit's input_pad=40, the default protocol), and again offline from the cache. The recipe's tokenizer
loses to a unit_tokenizer.json saved in the checkpoint, and to --tokenizer (with a warning);
`--protocol recipe` selects the family's protocol; every source is printed under the table."""
from __future__ import annotations

import json
import os
import shutil

import pytest
from typer.testing import CliRunner

from _hub_server import hub  # noqa: F401  (fixture)
from _data_helpers import make_paired
from _model_replicas import save_slamkit, squash
from slmeval.cli import app
from slmeval.io import read_jsonl
from test_tokenizer_presets import K, NAME, REPO, assets, preset  # noqa: F401  (fixtures)

SLAM = "slprl/slam_scaled"
TASK = "hub_audio"


@pytest.fixture(scope="module")
def slam_dir(tmp_path_factory):
    return save_slamkit(tmp_path_factory.mktemp("slam") / "slam", "qwen2", n_units=K, seed=5)


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory):
    """A local audio task: six espeak-ng pairs in the paired-folder layout."""
    folder = tmp_path_factory.mktemp("task")
    make_paired(folder / "paired", sep="_", n_pairs=6)
    (folder / "hub_audio.yaml").write_text(
        f'- {{name: {TASK}, family: pairs, source: paired_folder, path: ./paired, options: {{sep: "_"}}}}\n')
    return folder


def run(task_dir, *args: str):
    return CliRunner().invoke(app, ["run", *args, "--include-path", str(task_dir), "--no-progress"])


def scores_of(out, task: str) -> list[tuple[float, float]]:
    return [(r["positive_score"], r["negative_score"]) for r in read_jsonl(out / f"samples_{task}.jsonl")]


def scores(out) -> list[tuple[float, float]]:
    return scores_of(out, TASK)


def test_hub_id_alone_equals_the_hand_wired_command_and_runs_offline(hub, preset, assets, slam_dir, task_dir, tmp_path,
                                                                      monkeypatch):
    commit = hub.add(SLAM, slam_dir)
    out = tmp_path / "hub"
    result = run(task_dir, "--model", SLAM, "--tasks", TASK, "--output", str(out))
    assert result.exit_code == 0, result.output
    hand = tmp_path / "hand"
    wired = run(task_dir, "--model", str(slam_dir), "--tokenizer", assets["hand"] + ",input_pad=40", "--tasks", TASK,
                "--output", str(hand), "--no-cache")
    assert wired.exit_code == 0, wired.output
    got, ref = json.loads((out / "results.json").read_text()), json.loads((hand / "results.json").read_text())
    assert got["results"] == ref["results"] and scores(out) == scores(hand)
    assert got["config"]["tokenizer"] == ref["config"]["tokenizer"]       # the same tokenizer identity
    assert got["config"]["protocol"]["name"] == "slmeval"                 # the default protocol, not the family's
    # what was used, and where each came from, under the table
    text = squash(result.output)
    assert squash(f"model {SLAM}@main (commit {commit}); format slamkit") in text
    assert squash(f"tokenizer {NAME}:input_pad=40, model={REPO}") in text
    assert squash("from recipe: slamkit (slp-rl/slamkit config/eval.yaml") in text
    assert squash("unit→token token = unit + 2 (adapter:slamkit") in text
    assert squash("protocol slmeval — from --protocol (the default: one protocol for every model") in text
    assert squash("recommended: this is a slamkit checkpoint: `--protocol recipe`") in text
    setup = got["provenance"]["setup"]
    assert setup["tokenizer"]["from"].startswith("recipe: slamkit") and setup["warnings"] == []
    # offline, warm cache: the same numbers, and not one request to the Hub
    hub.offline(monkeypatch)
    served = len(hub.log)
    offline = tmp_path / "offline"
    result = run(task_dir, "--model", SLAM, "--tasks", TASK, "--output", str(offline))
    assert result.exit_code == 0, result.output
    assert scores(offline) == scores(hand) and len(hub.log) == served


def test_protocol_recipe_and_saved_tokenizer_and_contradiction(hub, preset, assets, slam_dir, task_dir, tmp_path):
    hub.add(SLAM, slam_dir)
    out = tmp_path / "recipe"
    result = run(task_dir, "--model", SLAM, "--tasks", TASK, "--protocol", "recipe", "--output", str(out), "--limit", "2")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "results.json").read_text())["config"]["protocol"]["name"] == "slamkit"
    assert squash("protocol slamkit — from --protocol recipe: slamkit") in squash(result.output)
    # --tokenizer contradicting the recipe: used as asked, with a warning naming the difference
    warned = run(task_dir, "--model", SLAM, "--tasks", TASK, "--tokenizer", NAME, "--output", str(tmp_path / "w"), "--limit", "2")
    assert warned.exit_code == 0, warned.output
    assert squash(f"contradicts the slamkit recipe ({NAME}:input_pad=40") in squash(warned.output)
    assert squash("input_pad 0 (recipe: 40)") in squash(warned.output)
    # a unit tokenizer saved with the checkpoint wins over the family default (and is checked against it too)
    saved = tmp_path / "slam_saved"
    shutil.copytree(slam_dir, saved)
    (saved / "unit_tokenizer.json").write_text(json.dumps({"preset": NAME, "input_pad": 40}))
    hub.add(SLAM, saved)
    own = run(task_dir, "--model", SLAM, "--tasks", TASK, "--output", str(tmp_path / "own"), "--limit", "2")
    assert own.exit_code == 0, own.output
    assert squash(f"tokenizer {NAME}:input_pad=40, model=") in squash(own.output)
    assert squash("unit_tokenizer.json (saved with the checkpoint)") in squash(own.output)
    assert "contradicts" not in own.output


def test_failures_come_before_any_data_or_audio(hub, preset, slam_dir, task_dir, tmp_path):
    """A tokenizer that cannot be had stops the run before the data is looked for (here it does not even
    exist) and before anything is written."""
    hub.add(SLAM, slam_dir)
    hub.gate(REPO)
    out = tmp_path / "out"
    result = run(task_dir, "--model", SLAM, "--tasks", "sblimp", "--data-root", str(tmp_path / "nothing"), "--output", str(out))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert squash(f"the Hub repository {REPO} is gated") in squash(result.output)
    assert not out.exists()
    # --protocol recipe for a family without one: one error naming the choices
    twistless = run(task_dir, "--model", str(tmp_path / "missing"), "--tasks", TASK, "--protocol", "recipe")
    assert twistless.exit_code == 2 and "no such directory" in twistless.output


def test_model_download_damaged_then_retry_and_a_moved_branch(hub, preset, slam_dir, task_dir, tmp_path):
    first = hub.add(SLAM, slam_dir)
    hub.fault(SLAM, "model.safetensors", "corrupt", times=1)    # huggingface_hub cannot tell; slmeval can
    out = tmp_path / "bad"
    bad = run(task_dir, "--model", SLAM, "--tasks", TASK, "--output", str(out), "--limit", "2")
    assert bad.exit_code == 2 and "Traceback" not in bad.output and not out.exists()
    assert squash("model.safetensors do not match the Hub's checksums") in squash(bad.output)
    good = tmp_path / "good"
    assert run(task_dir, "--model", SLAM, "--tasks", TASK, "--output", str(good), "--limit", "2").exit_code == 0
    # main moves to other weights: the plain id follows it, @<first commit> still gives the first numbers
    second = hub.add(SLAM, save_slamkit(tmp_path / "other", "qwen2", n_units=K, seed=8))
    for model, commit, out in ((SLAM, second, tmp_path / "moved"), (f"{SLAM}@{first}", first, tmp_path / "pinned")):
        result = run(task_dir, "--model", model, "--tasks", TASK, "--output", str(out), "--limit", "2")
        assert result.exit_code == 0, result.output
        assert json.loads((out / "results.json").read_text())["provenance"]["model_hub"]["commit_sha"] == commit
    assert scores(tmp_path / "pinned") == scores(good) != scores(tmp_path / "moved")


def test_readme_first_example_is_the_whole_command():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("## Evaluate a checkpoint: `slmeval run`", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert block.strip() == "slmeval run --model slprl/slam_scaled --tasks sblimp,sstorycloze,tstorycloze"


def test_the_literal_command_on_builtin_tasks_served_by_the_hub(hub, preset, assets, slam_dir, tmp_path, monkeypatch):
    """The issue's "done when": `slmeval run --model ORG/NAME --tasks sblimp,sstorycloze`, not one other flag. The
    checkpoint, the tokenizer and sstorycloze's data (the built-in task's Hub copy, a tiny espeak-ng sStoryCloze as
    parquet) come from the stand-in Hub; sblimp's data is the official sLM21 archive (a tiny espeak-ng sLM21 zip) at
    its address under SLMEVAL_DATA_MIRROR (the test cannot serve download.zerospeech.com; a user behind a mirror
    sets it as HF_ENDPOINT). The table is the hand-wired command's (local folders, explicit tokenizer,
    --data-root), and offline from the cache too; the run's provenance says where the archive's bytes came from."""
    import io
    import zipfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    from _data_helpers import make_sblimp, make_storycloze, pairs_to_parquet

    local = tmp_path / "local"
    story = make_storycloze(local / "sStoryCloze")
    make_sblimp(local / "sLM21-dataset", release_columns=True)
    # with the story column (the local reader's meta, passed through as meta by hf_pairs); no speaker column:
    # the task's pin fills it as the local single-speaker reader does (speaker: null)
    table_ = pq.read_table(io.BytesIO(pairs_to_parquet(story)))
    for column in ("story",):
        table_ = table_.append_column(column, pa.array([p.meta[column] for p in story], type=pa.string()))
    buf = io.BytesIO()
    pq.write_table(table_, buf)
    hub.add("speed/sStoryCloze", {"data/train-00000-of-00001.parquet": buf.getvalue()}, repo_type="dataset")
    hub.add(SLAM, slam_dir)
    archive = io.BytesIO()   # zrc's archive holds what it unpacks into sLM21-dataset/
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted((local / "sLM21-dataset").rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(local / "sLM21-dataset").as_posix())
    official = "https://download.zerospeech.com/datasets/sLM21.dataset.zip"   # tasks/sblimp.yaml `archive: url`
    mirrored = hub.add_web_file("datasets/sLM21.dataset.zip", archive.getvalue())
    monkeypatch.setenv("SLMEVAL_DATA_MIRROR", hub.endpoint + "/web")
    monkeypatch.chdir(tmp_path)
    tasks = "sblimp,sstorycloze"

    def table(output: str) -> list[str]:
        rows = [line for line in output.splitlines() if ("sstorycloze" in line or "sblimp" in line) and "│" in line]
        assert {"sblimp", "sstorycloze"} <= {word for row in rows for word in row.replace("│", " ").split()}, output
        return rows

    literal = CliRunner().invoke(app, ["run", "--model", SLAM, "--tasks", tasks])
    assert literal.exit_code == 0, literal.output
    wired = CliRunner().invoke(app, ["run", "--model", str(slam_dir), "--tasks", tasks, "--data-root",
                                     str(local), "--tokenizer", assets["hand"] + ",input_pad=40", "--no-cache",
                                     "--no-progress", "--output", str(tmp_path / "wired")])
    assert wired.exit_code == 0, wired.output
    assert table(literal.output) == table(wired.output)
    assert hub.downloads("speed/sStoryCloze", "dataset") == ["data/train-00000-of-00001.parquet"]
    assert [f for f in hub.downloads("web", "model") if f.endswith(".zip")] == ["datasets/sLM21.dataset.zip"]
    hub.offline(monkeypatch)
    served = len(hub.log)
    # (--output only keeps the per-pair scores, to compare them exactly: the Hub copy's pairs in any order)
    again = CliRunner().invoke(app, ["run", "--model", SLAM, "--tasks", tasks, "--output", str(tmp_path / "o")])
    assert again.exit_code == 0, again.output
    assert table(again.output) == table(wired.output) and len(hub.log) == served
    for task in ("sblimp", "sstorycloze"):
        assert sorted(scores_of(tmp_path / "o", task)) == sorted(scores_of(tmp_path / "wired", task))
    data = json.loads((tmp_path / "o" / "results.json").read_text())["provenance"]["data"]
    assert (data["sblimp"]["from"], data["sblimp"]["fetched_from"]) == (official, mirrored)
    assert data["sblimp"]["verified"] is False     # the official md5 is not public: a mirror cannot make it verified
    assert data["sstorycloze"]["fetched_from"] == hub.endpoint


def test_under_torchrun_rank0_fetches_model_and_preset_and_the_others_read_the_caches(hub, preset, assets, slam_dir,
                                                                                       task_dir, tmp_path,
                                                                                       monkeypatch):
    """resolve_setup_for_world with a two-rank world in one process (broadcast hands out rank 0's value, as
    tests/test_data_hub.py does for the data side): rank 0 downloads the Hub model and the recipe's preset
    (HuBERT snapshot + k-means file); rank 1 then builds the same tokenizer from the caches with not one
    request, even with the stand-in Hub refusing everything; a rank on another node (empty caches) downloads
    for itself. An error on rank 0 reaches rank 1 as that one message, and rank 1 asks the Hub nothing."""
    from slmeval.distributed import DistributedError, World
    from slmeval.task_loader.registry import get_tasks
    from slmeval.run_setup import resolve_setup_for_world
    from slmeval.units import TokenizerError

    class Rank(World):
        sent: list = []

        def broadcast(self, obj):
            if self.rank == 0:
                Rank.sent.append(obj)
            return Rank.sent[-1]

    hub.add(SLAM, slam_dir)
    configs = get_tasks([TASK], [task_dir])
    kwargs = dict(model_args=None, tokenizer=None, protocol="slmeval", configs=configs, allow_pickle=False,
                  device="cpu")
    first = resolve_setup_for_world(Rank(rank=0, world_size=2), SLAM, **kwargs)
    assert {f for f in hub.downloads(REPO)} and hub.downloads("web", "model") == [preset["entry"].kmeans.name]
    served = len(hub.log)
    hub.gate(REPO)
    hub.gate(SLAM)
    hub.web.clear()
    other = resolve_setup_for_world(Rank(rank=1, world_size=2), SLAM, **kwargs)
    assert len(hub.log) == served                            # from the caches: not one request
    assert other.tokenizer.identity == first.tokenizer.identity
    assert other.plan.ckpt.directory == first.plan.ckpt.directory
    assert other.sources["tokenizer"] == first.sources["tokenizer"]
    assert "HF_HUB_OFFLINE" not in os.environ                # downloads are off for that call only
    # a rank on another node, whose caches are not rank 0's: it downloads for itself
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "node1_hf"))
    monkeypatch.setenv("SLMEVAL_CACHE", str(tmp_path / "node1_slmeval"))
    hub.repos[("model", REPO)].gated = hub.repos[("model", SLAM)].gated = False
    hub.web[preset["entry"].kmeans.name] = assets["km"]
    node1 = resolve_setup_for_world(Rank(rank=1, world_size=2), SLAM, **kwargs)
    assert node1.tokenizer.identity == first.tokenizer.identity and len(hub.log) > served
    assert hub.downloads("web", "model") == [preset["entry"].kmeans.name] * 2
    # a tokenizer rank 0 cannot have: rank 0 raises it, rank 1 gets its message and asks nothing
    fresh = dict(kwargs, tokenizer="hubert-base-l6-km50")   # a GSLM preset: its files are not served here
    with pytest.raises(TokenizerError) as own:
        resolve_setup_for_world(Rank(rank=0, world_size=2), SLAM, **fresh)
    served = len(hub.log)
    with pytest.raises(DistributedError) as shared:
        resolve_setup_for_world(Rank(rank=1, world_size=2), SLAM, **fresh)
    assert len(hub.log) == served and shared.value.reported_by_rank0 and own.value.reported_by_rank0
    assert str(shared.value) == ("rank 0 of 2 failed while resolving the model and tokenizer: "
                                 f"TokenizerError: {own.value}")
