"""The stand-in Hub (tests/_hub_server.py) answers huggingface_hub's own download code as the real Hub does:
snapshot_download / hf_hub_download of model and dataset repos, moved revisions, errors, faults, the log."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from _hub_server import git_blob_sha1, hub  # noqa: F401  (fixture)


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_snapshot_and_file_download_models_and_datasets(hub, tmp_path):
    from huggingface_hub import hf_hub_download, snapshot_download

    files = {"config.json": b'{"a": 1}', "model.safetensors": bytes(range(256)) * 40, "sub/notes.txt": b"hi"}
    sha = hub.add("org/model", _folder(tmp_path / "m", files))
    snap = Path(snapshot_download("org/model"))
    assert snap.name == sha and {p.relative_to(snap).as_posix(): p.read_bytes() for p in snap.rglob("*")
                                 if p.is_file()} == files
    # The blobs are named as the real Hub's ETags name them: git blob sha1, or sha256 for an LFS file.
    blobs = {p.name for p in (snap.parents[1] / "blobs").iterdir()}
    assert blobs == {git_blob_sha1(b'{"a": 1}'), git_blob_sha1(b"hi"),
                     hashlib.sha256(files["model.safetensors"]).hexdigest()}
    data = {"train/0.parquet": b"PAR1" * 100, "README.md": b"# d"}
    dsha = hub.add("org/data", _folder(tmp_path / "d", data), repo_type="dataset", revision="v1")
    path = hf_hub_download("org/data", "train/0.parquet", repo_type="dataset", revision="v1")
    assert Path(path).read_bytes() == data["train/0.parquet"] and f"/snapshots/{dsha}/" in path
    assert "datasets--org--data" in path
    assert hub.downloads("org/data", "dataset") == ["train/0.parquet"]


def test_moved_revision_and_pinned_commit(hub, tmp_path):
    from huggingface_hub import hf_hub_download

    old = hub.add("org/m", {"w.txt": b"old"})
    new = hub.add("org/m", {"w.txt": b"new"})
    assert old != new
    assert Path(hf_hub_download("org/m", "w.txt")).read_bytes() == b"new"
    assert Path(hf_hub_download("org/m", "w.txt", revision=old)).read_bytes() == b"old"


def test_errors_map_to_huggingface_hub_exceptions(hub):
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    hub.add("org/m", {"a.txt": b"a"})
    hub.add("org/gated", {"a.txt": b"a"})
    hub.gate("org/gated")
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("org/missing")
    with pytest.raises(RevisionNotFoundError):
        snapshot_download("org/m", revision="nope")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("org/m", "b.txt")
    with pytest.raises(GatedRepoError):
        hf_hub_download("org/gated", "a.txt")
    assert Path(hf_hub_download("org/gated", "a.txt", token=hub.TOKEN)).read_bytes() == b"a"
    assert any(e["status"] == 401 for e in hub.log)


def test_faults_truncate_resumes_corrupt_passes_through(hub):
    from huggingface_hub import hf_hub_download

    data = bytes(range(256)) * 64
    hub.add("org/m", {"w.bin": data, "t.txt": b"x" * 1000})
    hub.fault("org/m", "w.bin", "truncate", times=1)
    # huggingface_hub retries after the cut (from the bytes it kept; none here, its read chunk is 10 MB).
    assert Path(hf_hub_download("org/m", "w.bin")).read_bytes() == data
    cuts = [e.get("fault") for e in hub.log if e.get("file") == "w.bin" and e["method"] == "GET"]
    assert cuts == ["truncate", None]
    hub.fault("org/m", "t.txt", "drop")   # every try hangs up: huggingface_hub gives up, nothing is cached
    with pytest.raises(Exception):
        hf_hub_download("org/m", "t.txt")
    hub.heal()
    hub.fault("org/m", "t.txt", "corrupt", times=1)
    assert Path(hf_hub_download("org/m", "t.txt")).read_bytes() != b"x" * 1000   # huggingface_hub cannot tell


def test_offline_reads_the_warm_cache(hub, monkeypatch):
    from huggingface_hub import snapshot_download

    sha = hub.add("org/m", {"a.txt": b"a"})
    snapshot_download("org/m")
    served = len(hub.log)
    hub.offline(monkeypatch)
    assert Path(snapshot_download("org/m")).name == sha and len(hub.log) == served
