"""Benchmark data from a pinned public copy, through the real download code against the stand-in Hub
(tests/_hub_server.py on 127.0.0.1): tiny espeak-ng sWUGGY (WebDataset shards + gold.csv, the ZeroSpeech
team's Hub layout), StoryCloze (parquet with audio columns) and SALMon (parquet per part), each also in its
local layout. References: the local layout's pairs and scores (the readers' own tests check those against
the official scorers), checksums computed here with hashlib, and the stand-in Hub's request log."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import slmeval
from _data_helpers import make_salmon, make_storycloze, make_swuggy, pairs_to_parquet, speech, to_webdataset
from _hub_server import hub  # noqa: F401  (fixture)
from conftest import N_UNITS
from slmeval.audio import write_audio
from slmeval.cli import app
from slmeval.data import read_pairs
from slmeval.task_loader.registry import TaskError, get_tasks
from slmeval.task_loader.data import resolve_task_data
from slmeval.units import fit_logmel_kmeans

PARTS = ["bg_alignment", "speaker_consistency"]
SWUGGY = {"family": "zerospeech_lexical", "source": "zerospeech_lexical", "path": "sLM21-dataset",
          "options": {"split": "dev"}, "grouping": {"item": ["item"], "breakdown": ["frequency_band"], "voice": "voice"}}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    local = tmp_path_factory.mktemp("local")
    swuggy = make_swuggy(local / "sLM21-dataset")
    story = make_storycloze(local / "sStoryCloze")
    salmon = make_salmon(local / "salmon_benchmark", tuple(PARTS))
    wds = to_webdataset(local / "sLM21-dataset" / "lexical" / "dev", tmp_path_factory.mktemp("wds"))
    train = tmp_path_factory.mktemp("train")
    for i, (text, voice) in enumerate([("water garden window", "en-us"), ("the cat sleeps on the mat", "en-gb+f3")]):
        write_audio(train / f"{i}.wav", speech(text, voice))
    tok = fit_logmel_kmeans(sorted(train.glob("*.wav")), k=N_UNITS, out_dir=tmp_path_factory.mktemp("tok"),
                            progress=False)
    repos = {
        "zr/swuggy": wds,
        "speed/sstory": {"data/train-00000-of-00001.parquet": pairs_to_parquet(story)},
        "slprl/salmon": {f"{part}/train/0000.parquet": pairs_to_parquet([p for p in salmon if p.meta["part"] == part],
                                                                         "positive_audio", "negative_audio")
                         for part in PARTS},
    }
    return {"local": local, "swuggy": swuggy, "repos": repos, "tok": str(tok), "units": tmp_path_factory.mktemp("u")}


def same(a, b) -> bool:
    """Equal numbers, NaN included (a one-item group's stderr is NaN)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def write_tasks(folder: Path, tasks: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for t in tasks:
        (folder / f"{t['name']}.yaml").write_text(yaml.safe_dump(t))
    return folder


def pinned(repo: str, sha_: str, files: dict[str, bytes], **extra) -> dict:
    return {"repo": repo, "revision": sha_, "files": {p: sha(d) for p, d in files.items()}, **extra}


@pytest.fixture
def env(hub, world, tmp_path, monkeypatch):  # noqa: F811
    """Every repo on the stand-in Hub, task files pinning each (commit + sha256 of every file)."""
    monkeypatch.setenv("SLMEVAL_CACHE", str(tmp_path / "slm_cache"))
    shas = {repo: hub.add(repo, files, repo_type="dataset") for repo, files in world["repos"].items()}
    r = world["repos"]
    tasks = [
        {"name": "hub_swuggy", **SWUGGY, "hub": pinned("zr/swuggy", shas["zr/swuggy"], r["zr/swuggy"],
                                                        source="zerospeech_lexical_webdataset",
                                                        options={"shards": "audio/*.tar"})},
        {"name": "hub_sstory", "source": "storycloze", "path": "sStoryCloze",
         "hub": pinned("speed/sstory", shas["speed/sstory"], r["speed/sstory"], source="hf_pairs", options={})},
        {"name": "hub_salmon", "source": "salmon", "path": "salmon_benchmark", "options": {"parts": PARTS},
         "grouping": {"breakdown": ["part"]},
         "hub": pinned("slprl/salmon", shas["slprl/salmon"], r["slprl/salmon"], source="salmon_parquet",
                       options={"parts": PARTS})},
    ]
    return {"hub": hub, "shas": shas, "tasks": write_tasks(tmp_path / "tasks", tasks), "tmp": tmp_path,
            "names": [t["name"] for t in tasks], "monkeypatch": monkeypatch}


def run(world, env, *, model, tasks=None, data_root=None):
    return slmeval.evaluate(model, tasks or env["names"], data_root=data_root, tokenizer=world["tok"],
                            include_path=[env["tasks"]], cache_dir=world["units"], progress=False)


def test_hub_copies_score_as_the_local_layout_and_rerun_offline(world, env, tiny_llama_dir, caplog):
    hub_ = env["hub"]
    caplog.set_level("INFO", logger="slmeval")
    local = run(world, env, data_root=world["local"], model=tiny_llama_dir)
    assert hub_.log == []                                  # the local layout wins: not one request
    first = run(world, env, model=tiny_llama_dir)
    assert same(first["results"], local["results"]) and same(first["breakdowns"], local["breakdowns"])
    for task, repo in (("hub_swuggy", "zr/swuggy"), ("hub_sstory", "speed/sstory"), ("hub_salmon", "slprl/salmon")):
        data = first["provenance"]["data"][task]
        assert data["verified"] is True and data["commit"] == env["shas"][repo]
        assert sorted(hub_.downloads(repo, "dataset")) == sorted(world["repos"][repo])   # each file once
        assert {p: f["sha256"] for p, f in data["files"].items()} == {p: sha(d) for p, d in world["repos"][repo].items()}
    assert local["provenance"]["data"]["hub_swuggy"] == {"kind": "local"}
    size = sum(len(d) for d in world["repos"]["zr/swuggy"].values())   # the run says what it fetches, how large
    assert f"hub_swuggy: downloading zr/swuggy @ {env['shas']['zr/swuggy'][:12]}: 3 file(s), " \
           f"{slmeval.fmt.format_count(size)}B" in caplog.text
    # the WebDataset pairs are the local pairs: same ids, keys, meta and audio bytes
    got = read_pairs("zerospeech_lexical_webdataset", _snapshot(env, "zr/swuggy"), shards="audio/*.tar")
    assert [(p.id, p.positive.key, p.negative.key, p.meta) for p in got] == \
           [(p.id, p.positive.key, p.negative.key, p.meta) for p in world["swuggy"]]
    assert all(g.positive.audio == Path(w.positive.audio).read_bytes() for g, w in zip(got, world["swuggy"]))
    # warm cache, offline: the same numbers and no request at all
    hub_.offline(env["monkeypatch"])
    n = len(hub_.log)
    again = run(world, env, model=tiny_llama_dir)
    assert same(again["results"], first["results"]) and len(hub_.log) == n


def _snapshot(env, repo: str) -> Path:
    return env["tmp"] / "hf_cache" / f"datasets--{repo.replace('/', '--')}" / "snapshots" / env["shas"][repo]


def test_cold_cache_offline_is_one_error_with_the_pull_command_before_any_work(world, env, tiny_llama_dir,
                                                                               monkeypatch):
    import slmeval.units.cache as unit_cache

    env["hub"].offline(env["monkeypatch"])
    monkeypatch.setattr(unit_cache, "tokenize_sources", lambda *a, **k: pytest.fail("audio was decoded"))
    out, units = env["tmp"] / "out", env["tmp"] / "fresh_units"
    with pytest.raises(TaskError) as err:
        slmeval.evaluate(tiny_llama_dir, env["names"], tokenizer=world["tok"], include_path=[env["tasks"]],
                         cache_dir=units, output=out, progress=False)
    assert "`slmeval data pull hub_swuggy hub_sstory hub_salmon`" in str(err.value)
    assert env["hub"].log == [] and not out.exists() and not units.exists()   # nothing written, nothing asked
    result = CliRunner().invoke(app, ["run", "--model", str(tiny_llama_dir), "--tasks", ",".join(env["names"]),
                                      "--include-path", str(env["tasks"]), "--tokenizer", world["tok"]])
    assert result.exit_code == 2 and "slmeval data pull hub_swuggy hub_sstory hub_salmon" in result.output
    assert "Traceback" not in result.output and result.output.count("error") == 1


def _cache_files(env) -> list[Path]:
    return [p for p in (env["tmp"] / "hf_cache").rglob("*") if p.is_file() and "refs" not in p.parts]


def test_checksum_mismatch_is_an_error_and_nothing_stays(world, env):
    bad = dict(yaml.safe_load((env["tasks"] / "hub_swuggy.yaml").read_text()))
    bad["hub"]["files"]["gold.csv"] = "0" * 64
    write_tasks(env["tasks"], [bad])
    out = CliRunner().invoke(app, ["data", "pull", "hub_swuggy", "--include-path", str(env["tasks"]), "--no-progress"])
    assert out.exit_code == 2 and "gold.csv" in out.output and sha(world["repos"]["zr/swuggy"]["gold.csv"]) in out.output
    assert not [p for p in _cache_files(env) if p.read_bytes() == world["repos"]["zr/swuggy"]["gold.csv"]]
    assert not (env["tmp"] / "slm_cache" / "data" / "records").exists()
    # a download corrupted in transit (same length, other bytes) against the right pin: refused, then retried
    story = get_tasks(["hub_sstory"], [env["tasks"]])
    name = "data/train-00000-of-00001.parquet"
    env["hub"].fault("speed/sstory", name, "corrupt", times=1, repo_type="dataset")
    with pytest.raises(TaskError, match="train-00000-of-00001.parquet"):
        resolve_task_data(story, None, progress=False)
    good = world["repos"]["speed/sstory"][name]
    assert not [p for p in _cache_files(env) if p.stat().st_size == len(good)]   # blob and link both gone
    got = resolve_task_data(story, None, progress=False)["hub_sstory"]          # the retry downloads it whole
    assert got.provenance["verified"] is True and (got.path / name).read_bytes() == good


def test_truncated_download_then_retry(world, env):
    hub_ = env["hub"]
    tasks = get_tasks(["hub_sstory"], [env["tasks"]])
    hub_.fault("speed/sstory", "data/train-00000-of-00001.parquet", "truncate", repo_type="dataset")   # every time
    with pytest.raises(TaskError, match="hub_sstory"):
        resolve_task_data(tasks, None, progress=False)
    assert not [p for p in _cache_files(env) if p.suffix == ".parquet" or p.name.endswith(".incomplete")]
    hub_.heal()
    hub_.fault("speed/sstory", "data/train-00000-of-00001.parquet", "truncate", times=1, repo_type="dataset")
    got = resolve_task_data(tasks, None, progress=False)["hub_sstory"]
    assert got.provenance["verified"] is True
    cut = [e for e in hub_.log if e.get("file") == "data/train-00000-of-00001.parquet" and e["method"] == "GET"]
    assert cut[-2].get("fault") == "truncate" and not cut[-1].get("fault")   # cut once, fetched again in the same pull
    assert (got.path / "data/train-00000-of-00001.parquet").read_bytes() == \
        world["repos"]["speed/sstory"]["data/train-00000-of-00001.parquet"]


def test_404_and_gated_repos_are_one_clear_error(world, env):
    hub_, folder = env["hub"], env["tmp"] / "more"
    base = {"source": "storycloze", "path": "nowhere"}
    write_tasks(folder, [
        {"name": "no_repo", **base, "hub": {"repo": "nobody/none", "revision": "main", "include": "*.parquet"}},
        {"name": "no_file", **base, "hub": {"repo": "speed/sstory", "revision": env["shas"]["speed/sstory"],
                                            "files": {"data/missing.parquet": None}, "source": "hf_pairs", "options": {}}},
        {"name": "no_rev", **base, "hub": {"repo": "speed/sstory", "revision": "f" * 40, "include": "*.parquet",
                                           "source": "hf_pairs", "options": {}}},
    ])
    for name, words in (("no_repo", "no dataset nobody/none"), ("no_file", "has no file"), ("no_rev", "not on the Hub")):
        out = CliRunner().invoke(app, ["data", "pull", name, "--include-path", str(folder), "--no-progress"])
        assert out.exit_code == 2 and words in out.output and "Traceback" not in out.output, out.output
    hub_.gate("speed/sstory", repo_type="dataset")
    tasks = get_tasks(["hub_sstory"], [env["tasks"]])
    with pytest.raises(TaskError, match=r"gated \(401\).*HF_TOKEN"):
        resolve_task_data(tasks, None, progress=False)
    env["monkeypatch"].setenv("HF_TOKEN", hub_.TOKEN)
    assert resolve_task_data(tasks, None, progress=False)["hub_sstory"].provenance["verified"]


def test_a_moved_revision_keeps_the_pinned_files_and_a_branch_is_never_verified(world, env):
    hub_ = env["hub"]
    old = world["repos"]["speed/sstory"]
    new_sha = hub_.add("speed/sstory", {"data/train-00000-of-00001.parquet": b"PAR1 not the same data"},
                       repo_type="dataset")                # main moves to a new commit
    pinned_task = get_tasks(["hub_sstory"], [env["tasks"]])
    got = resolve_task_data(pinned_task, None, progress=False)["hub_sstory"]
    assert (got.path / "data/train-00000-of-00001.parquet").read_bytes() == old["data/train-00000-of-00001.parquet"]
    write_tasks(env["tmp"] / "branch", [{"name": "on_main", "source": "hf_pairs", "path": "x",
                                          "hub": {"repo": "speed/sstory", "revision": "main", "include": "*.parquet"}}])
    on_main = get_tasks(["on_main"], [env["tmp"] / "branch"])
    # unpinned, a corrupted transfer is still caught: against the sha256 the Hub reports for the LFS file
    hub_.fault("speed/sstory", "data/train-00000-of-00001.parquet", "corrupt", times=1, repo_type="dataset")
    with pytest.raises(TaskError, match="as the sha256 the Hub reports says"):
        resolve_task_data(on_main, None, progress=False)
    branch = resolve_task_data(on_main, None, progress=False)["on_main"]
    assert branch.provenance["commit"] == new_sha and branch.provenance["verified"] is False
    assert any("branch or tag" in r for r in branch.provenance["unverified_because"])


def test_official_archive_pinned_by_md5_then_a_wrong_md5(world, env, tiny_llama_dir):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted((world["local"] / "sLM21-dataset").rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(world["local"] / "sLM21-dataset").as_posix())
    data = buf.getvalue()
    url = env["hub"].add_web_file("sLM21.dataset.zip", data)   # a plain web address, as download.zerospeech.com
    md5 = hashlib.md5(data).hexdigest()
    write_tasks(env["tasks"], [{"name": "arch_swuggy", **SWUGGY, "archive": {"url": url, "folder": "sLM21-dataset",
                                                                             "md5": md5}},
                               {"name": "arch_bad", **SWUGGY, "archive": {"url": url, "folder": "sLM21-dataset",
                                                                          "md5": "0" * 32}}])
    res = run(world, env, tasks=["arch_swuggy"], model=tiny_llama_dir)
    local = run(world, env, tasks=["arch_swuggy"], data_root=world["local"], model=tiny_llama_dir)
    assert same(res["results"], local["results"]) and res["provenance"]["data"]["arch_swuggy"]["verified"] is True
    out = CliRunner().invoke(app, ["data", "pull", "arch_bad", "--include-path", str(env["tasks"]), "--no-progress"])
    assert out.exit_code == 2 and md5 in out.output and "deleted" in out.output
    # same address: the bad pin's attempt deleted its download and kept no record claiming the data
    record = json.loads(next((env["tmp"] / "slm_cache" / "data" / "archives").glob("*/record.json")).read_text())
    assert record["files"]["sLM21.dataset.zip"]["md5"] == md5
    assert not list((env["tmp"] / "slm_cache" / "data" / "archives").glob("*/*.part"))


def test_data_pull_and_list(world, env):
    env["monkeypatch"].setenv("COLUMNS", "250")            # one table row per line
    runner = CliRunner()
    out = runner.invoke(app, ["data", "list", "--include-path", str(env["tasks"])])
    assert out.exit_code == 0 and "zr/swuggy" in out.output
    out = runner.invoke(app, ["data", "pull", "hub_swuggy", "--include-path", str(env["tasks"]), "--no-progress"])
    assert out.exit_code == 0 and "verified" in out.output and "not verified" not in out.output, out.output
    size = sum(len(d) for d in world["repos"]["zr/swuggy"].values())
    assert f"{size} bytes" in out.output
    out = runner.invoke(app, ["data", "list", "--include-path", str(env["tasks"])])
    row = next(line for line in out.output.splitlines() if "hub_swuggy" in line)
    assert "yes" in row and f"{size} B" in row
    out = runner.invoke(app, ["data", "pull", "swuggy_inter", "--no-progress"])
    assert out.exit_code == 2 and "names no Hub copy" in out.output


def test_task_file_pins_are_checked_when_read(tmp_path):
    bad = [({"repo": "noslash", "revision": "main", "include": "*"}, "not a Hub id"),
           ({"repo": "a/b", "include": "*"}, "`revision` is required"),
           ({"repo": "a/b", "revision": "main"}, "one of them"),
           ({"repo": "a/b", "revision": "main", "files": {"x": "abc"}}, "not a sha256"),
           ({"repo": "a/b", "revision": "main", "include": "*", "source": "hf_pairs", "options": {"nope": 1}},
            "does not take option")]
    for i, (hub_spec, words) in enumerate(bad):
        write_tasks(tmp_path / str(i), [{"name": f"t{i}", "source": "storycloze", "path": "x", "hub": hub_spec}])
        with pytest.raises(TaskError, match=words):
            get_tasks([f"t{i}"], [tmp_path / str(i)])


def test_builtin_task_files_name_their_public_copies_and_none_claims_verification():
    from slmeval.task_loader.registry import make_task
    from slmeval.task_loader.files import read_task_file

    folder = Path(__file__).resolve().parent.parent / "tasks"
    tasks = {t["name"]: make_task(t, str(f), str(f.parent)) for f in sorted(folder.rglob("*.yaml"))
             for t in read_task_file(f) or []}
    remote = {name: t.remote for name, t in tasks.items() if t.remote is not None}
    assert {n: r.describe() for n, r in remote.items()} == {
        **dict.fromkeys(["sblimp", "sblimp_test", "swuggy", "swuggy_test"],
                        "https://download.zerospeech.com/datasets/sLM21.dataset.zip"),
        "sstorycloze": "https://huggingface.co/datasets/speed/sStoryCloze @ main",
        "tstorycloze": "https://huggingface.co/datasets/speed/tStoryCloze @ main",
        "salmon": "https://huggingface.co/datasets/slprl/SALMon @ refs/convert/parquet"}
    assert all(r.unpinned() for r in remote.values())     # no public revision + checksum: never "verified"
    assert all(f"slmeval data pull {n}" in tasks[n].how_to_get for n in remote)


def test_a_damaged_cache_file_is_noticed_offline_and_repaired_online(world, env):
    tasks = get_tasks(["hub_sstory"], [env["tasks"]])
    name = "data/train-00000-of-00001.parquet"
    got = resolve_task_data(tasks, None, progress=False)["hub_sstory"]
    blob = (got.path / name).resolve()
    blob.write_bytes(blob.read_bytes()[:100])              # cut short behind slmeval's back
    env["hub"].offline(env["monkeypatch"])
    with pytest.raises(TaskError, match="slmeval data pull hub_sstory"):
        resolve_task_data(tasks, None, progress=False)
    env["monkeypatch"].delenv("HF_HUB_OFFLINE")
    env["monkeypatch"].setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    again = resolve_task_data(tasks, None, progress=False)["hub_sstory"]
    assert (again.path / name).read_bytes() == world["repos"]["speed/sstory"][name] and again.provenance["verified"]
    assert env["hub"].downloads("speed/sstory", "dataset") == [name, name]   # fetched again, once


def test_a_cut_archive_download_is_continued_by_the_next_pull(world, env):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("lexical/readme.txt", "x" * 5000)
        zf.writestr("syntactic/readme.txt", "y" * 5000)
    data = buf.getvalue()
    url = env["hub"].add_web_file("a.zip", data)
    env["hub"].fault("web", "a.zip", "truncate", times=1)
    write_tasks(env["tasks"], [{"name": "cut", "source": "storycloze", "path": "x",
                                "archive": {"url": url, "folder": "d", "sha256": sha(data)}}])
    runner = CliRunner()
    out = runner.invoke(app, ["data", "pull", "cut", "--include-path", str(env["tasks"]), "--no-progress"])
    assert out.exit_code == 2 and "again to continue it" in out.output
    part = next((env["tmp"] / "slm_cache" / "data" / "archives").glob("*/a.zip.part"))
    assert 0 < part.stat().st_size < len(data) and data.startswith(part.read_bytes())
    out = runner.invoke(app, ["data", "pull", "cut", "--include-path", str(env["tasks"]), "--no-progress"])
    assert out.exit_code == 0 and "verified" in out.output and "not verified" not in out.output, out.output
    assert [e["range"] for e in env["hub"].log if e.get("file") == "a.zip"][-1] == f"bytes={len(data) // 2}-"
    assert (part.parent / "d" / "syntactic" / "readme.txt").read_text() == "y" * 5000 and not part.exists()


def test_every_failing_download_is_named_in_one_error(world, env):
    env["hub"].gate("speed/sstory", repo_type="dataset")
    env["hub"].gate("slprl/salmon", repo_type="dataset")
    with pytest.raises(TaskError) as err:
        resolve_task_data(get_tasks(env["names"], [env["tasks"]]), None, progress=False)
    text = str(err.value)
    assert "speed/sstory is gated" in text and "slprl/salmon is gated" in text
    assert text.endswith("Retry with `slmeval data pull hub_sstory hub_salmon`.")
    env["hub"].offline(env["monkeypatch"])                 # the task that could be fetched was: it is cached now
    assert resolve_task_data(get_tasks(["hub_swuggy"], [env["tasks"]]), None, progress=False)["hub_swuggy"] \
        .provenance["verified"]


def test_under_torchrun_rank0_downloads_and_the_others_read_its_cache(world, env):
    from slmeval.distributed import World
    from slmeval.task_loader.data import resolve_for_world

    class Rank(World):        # a two-process world without processes: broadcast hands out rank 0's value
        sent: list = []

        def broadcast(self, obj):
            if self.rank == 0:
                Rank.sent.append(obj)
            return Rank.sent[-1]

    tasks = get_tasks(["hub_sstory"], [env["tasks"]])
    got0 = resolve_for_world(Rank(rank=0, world_size=2), tasks, None, progress=False)
    n = len(env["hub"].log)
    got1 = resolve_for_world(Rank(rank=1, world_size=2), tasks, None, progress=False)
    assert got1["hub_sstory"].path == got0["hub_sstory"].path and len(env["hub"].log) == n   # from the cache
    env["hub"].gate("slprl/salmon", repo_type="dataset")
    salmon = get_tasks(["hub_salmon"], [env["tasks"]])
    with pytest.raises(TaskError, match="gated"):
        resolve_for_world(Rank(rank=0, world_size=2), salmon, None, progress=False)
    n = len(env["hub"].log)
    with pytest.raises(TaskError, match="gated") as err:       # rank 1 gets rank 0's error, asks nothing
        resolve_for_world(Rank(rank=1, world_size=2), salmon, None, progress=False)
    assert err.value.reported_by_rank0 and len(env["hub"].log) == n


def test_data_mirror_address_is_checked_recorded_and_a_part_from_another_address_is_not_continued(world, env):
    """SLMEVAL_DATA_MIRROR: an archive's path under the mirror; the pin's checksum still decides; the record says
    where the bytes came from; a `.part` begun at one address is never completed with bytes from another."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("syntactic/readme.txt", "z" * 5000)
    data = buf.getvalue()
    hub_, mp = env["hub"], env["monkeypatch"]
    official = "https://download.example.org/sets/m.zip"   # never reached: the test resolves loopback only
    write_tasks(env["tasks"], [{"name": "mirrored", "source": "storycloze", "path": "x",
                                "archive": {"url": official, "folder": "d", "sha256": sha(data)}}])

    def pull():
        return CliRunner().invoke(app, ["data", "pull", "mirrored", "--include-path", str(env["tasks"]), "--no-progress"])

    for bad in ("ftp://mirror.example/zr", "mirror.example", "https://mirror.example/?x=1"):
        mp.setenv("SLMEVAL_DATA_MIRROR", bad)
        out = pull()
        assert out.exit_code == 2 and "SLMEVAL_DATA_MIRROR" in out.output and "Traceback" not in out.output, out.output
    hub_.add_web_file("a/sets/m.zip", data)
    hub_.add_web_file("b/sets/m.zip", data)
    hub_.fault("web", "a/sets/m.zip", "truncate", times=1)
    mp.setenv("SLMEVAL_DATA_MIRROR", hub_.endpoint + "/web/a/")   # a trailing slash is the same address
    out = pull()
    assert out.exit_code == 2 and f"{hub_.endpoint}/web/a/sets/m.zip (mirror of {official}" in out.output
    mp.setenv("SLMEVAL_DATA_MIRROR", hub_.endpoint + "/web/b")
    out = pull()
    assert out.exit_code == 0 and "not verified" not in out.output, out.output
    b = [e for e in hub_.log if e.get("file") == "b/sets/m.zip"]
    assert len(b) == 1 and not b[0].get("range")        # started over at the new address, not continued
    record = json.loads(next((env["tmp"] / "slm_cache" / "data" / "archives").glob("*/record.json")).read_text())
    assert (record["url"], record["fetched_from"]) == (official, f"{hub_.endpoint}/web/b/sets/m.zip")
    got = resolve_task_data(get_tasks(["mirrored"], [env["tasks"]]), None, progress=False)["mirrored"]
    assert got.provenance["fetched_from"] == f"{hub_.endpoint}/web/b/sets/m.zip" and got.provenance["verified"]
    assert (got.path / "syntactic" / "readme.txt").read_text() == "z" * 5000
