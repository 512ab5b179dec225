"""Task data from a pinned public copy: a Hugging Face Hub dataset repo or an official archive address.

A task file may name, besides its local `--data-root` layout, where the data can be downloaded:

    hub:      {repo: ORG/NAME, revision: <commit sha>, files: {PATH: <sha256>|null, ...}
               | include: [GLOB, ...], source: READER, options: {...}, subdir: FOLDER}
    archive:  {url: https://..., sha256: <hex>|null, md5: <hex>|null, folder: NAME, size: BYTES}

Verified means: every byte on disk matches a checksum written in the task file, and the Hub revision is
a commit (a branch or tag moves). Where the public record gives no revision or no checksum the task file
says `null` and the data is *unpinned*: it is downloaded, checked against what the Hub itself reports
(its sha256 of LFS files, its sizes) so a corrupt or truncated download is still refused, but it is never
called verified. Hub files go to the huggingface_hub cache (HF_HUB_CACHE, shared with every HF tool);
archives and the records of what was pulled go under `<slmeval cache>/data/`. HF_ENDPOINT (Hub) and
SLMEVAL_DATA_MIRROR (archives, slmeval/data/archive.py) change only where bytes are fetched from, never the
pin; the record keeps that address (`fetched_from`).

A failed download leaves nothing that looks complete: huggingface_hub writes to a temporary file and
renames it when the transfer is whole; a file whose checksum is wrong is deleted (blob and snapshot
link); an archive is unpacked into a temporary folder that is renamed into place. `pull` is resumable at
file granularity (files already in the cache are kept and re-checked against the record; an archive's
`.part` file is continued with an HTTP Range request).
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from slmeval.data.base import DataLayoutError
from slmeval.io import atomic_write_text, sha256_file

log = logging.getLogger(__name__)

# the pins' format lives in pins.py; re-exported here for the callers that read both
from slmeval.data.pins import COMMIT, ArchivePin, HubPin, Remote, parse_remote  # noqa: F401


class RemoteDataError(DataLayoutError):
    """A download that cannot be used: not found, gated, offline, a checksum that does not match."""


@dataclass
class Fetched:
    """Data on disk for one remote copy."""
    path: Path                                     # what the reader reads (snapshot / unpacked folder + subdir)
    verified: bool
    reasons: list[str]                             # why not verified
    commit: str | None = None
    files: dict[str, dict] = field(default_factory=dict)   # path -> {sha256, size}
    fetched_from: str | None = None                # the address the bytes came from (a mirror, HF_ENDPOINT)

    @property
    def size(self) -> int:
        return sum(int(f.get("size") or 0) for f in self.files.values())


# -- parsing ----------------------------------------------------------------------------------------

# -- where things live --------------------------------------------------------------------------------

def hub_offline() -> bool:
    from huggingface_hub import constants

    flag = lambda n: os.environ.get(n, "").strip().upper() in ("1", "ON", "YES", "TRUE")  # noqa: E731
    return flag("HF_HUB_OFFLINE") or flag("TRANSFORMERS_OFFLINE") or bool(constants.HF_HUB_OFFLINE)


def hub_cache() -> Path:
    """HF_HUB_CACHE, else HF_HOME/hub, else huggingface_hub's default (read now, not at import)."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


def data_cache() -> Path:
    from slmeval.units import default_cache_dir

    return default_cache_dir() / "data"


def archive_dir(pin: ArchivePin) -> Path:
    return data_cache() / "archives" / hashlib.sha256(pin.url.encode()).hexdigest()[:16]


def record_path(pin: Remote, commit: str | None) -> Path:
    if isinstance(pin, HubPin):
        return data_cache() / "records" / f"hub--{pin.repo.replace('/', '--')}--{commit}.json"
    return archive_dir(pin) / "record.json"


def _read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _repo_cache(pin: HubPin) -> Path:
    return hub_cache() / f"datasets--{pin.repo.replace('/', '--')}"


def _commit_in_cache(pin: HubPin) -> str | None:
    if COMMIT.match(pin.revision):
        return pin.revision
    try:
        return (_repo_cache(pin) / "refs" / pin.revision).read_text().strip() or None
    except OSError:
        return None


def verdict(pin: Remote, files: dict[str, dict]) -> tuple[bool, list[str]]:
    reasons = pin.unpinned()
    if isinstance(pin, HubPin):
        for path, want in pin.files:
            if want is not None and files.get(path, {}).get("sha256") != want:
                reasons.append(f"{path}: sha256 differs from the pin")
    return not reasons, reasons


# -- what is already here -----------------------------------------------------------------------------

def cached(pin: Remote) -> Fetched | None:
    """The copy on this machine when it is complete (no network); None otherwise."""
    if isinstance(pin, ArchivePin):
        record, folder = _read_record(record_path(pin, None)), archive_dir(pin) / pin.folder
        if record is None or not folder.is_dir():
            return None
        verified, reasons = verdict(pin, record.get("files", {}))
        return Fetched(folder / pin.subdir if pin.subdir else folder, verified, reasons, None, record.get("files", {}),
                       record.get("fetched_from", pin.url))
    commit = _commit_in_cache(pin)
    if commit is None:
        return None
    snapshot = _repo_cache(pin) / "snapshots" / commit
    record = _read_record(record_path(pin, commit))
    if record is None:
        return None
    files = record.get("files", {})
    # every file there with its recorded size (a cut or edited cache file sends the task back to `pull`)
    if not files or not all((snapshot / p).is_file() and (snapshot / p).stat().st_size == f.get("size")
                            for p, f in files.items()):
        return None
    if pin.files and set(files) != {p for p, _ in pin.files}:
        return None
    verified, reasons = verdict(pin, files)
    return Fetched(snapshot / pin.subdir if pin.subdir else snapshot, verified, reasons, commit, files,
                   record.get("fetched_from"))


# -- pulling ---------------------------------------------------------------------------------------------

def _hub_errors(pin: HubPin, task: str, err: Exception) -> RemoteDataError:
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    pull = f"`slmeval data pull {task}`"
    if isinstance(err, GatedRepoError):
        return RemoteDataError(f"task {task!r}: the Hub dataset {pin.repo} is gated (401). Accept its terms on "
                               f"https://huggingface.co/datasets/{pin.repo}, log in (`hf auth login` or HF_TOKEN), "
                               f"then run {pull}")
    if isinstance(err, RevisionNotFoundError):
        return RemoteDataError(f"task {task!r}: revision {pin.revision} of {pin.repo} is not on the Hub (404): the "
                               "pinned commit was removed or the repo's history rewritten. The task file's pin "
                               "must be updated to a revision whose files are checked again")
    if isinstance(err, EntryNotFoundError):
        return RemoteDataError(f"task {task!r}: {pin.repo} @ {pin.revision} has no file the task file names (404: "
                               f"{str(err).splitlines()[0][:160]})")
    if isinstance(err, RepositoryNotFoundError):
        return RemoteDataError(f"task {task!r}: no dataset {pin.repo} on the Hub (404; a private repo needs "
                               "`hf auth login` or HF_TOKEN)")
    if isinstance(err, LocalEntryNotFoundError):
        return RemoteDataError(f"task {task!r}: {pin.repo} could not be reached and is not in the cache "
                               f"({hub_cache()}); run {pull} when online")
    return RemoteDataError(f"task {task!r}: downloading {pin.repo} failed ({type(err).__name__}: "
                           f"{str(err).splitlines()[0][:200]}); run {pull} again: files already fetched are kept")


def _listing(pin: HubPin) -> tuple[str, dict[str, dict]]:
    """(commit, {path: {size, hub_sha256}}) as the Hub reports them for the pin."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import EntryNotFoundError

    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)
    commit = api.dataset_info(pin.repo, revision=pin.revision).sha
    if pin.files:
        wanted = [p for p, _ in pin.files]
        entries = api.get_paths_info(pin.repo, wanted, revision=commit, repo_type="dataset")
        found = {e.path: e for e in entries}
        absent = [p for p in wanted if p not in found]
        if absent:
            raise EntryNotFoundError(f"{', '.join(absent[:3])} not in {pin.repo} @ {commit}")
    else:
        found = {e.path: e for e in api.list_repo_tree(pin.repo, recursive=True, revision=commit, repo_type="dataset")
                 if hasattr(e, "size") and any(fnmatch.fnmatch(e.path, g) for g in pin.include)}
        if not found:
            raise EntryNotFoundError(f"no file of {pin.repo} @ {commit} matches {list(pin.include)}")
    return commit, {p: {"size": e.size, "hub_sha256": e.lfs.sha256 if getattr(e, "lfs", None) else None}
                    for p, e in sorted(found.items())}


def _discard(path: Path) -> None:
    """Remove a cached file and the blob its snapshot link points at."""
    blob = path.resolve() if path.is_symlink() else None
    path.unlink(missing_ok=True)
    if blob is not None:
        blob.unlink(missing_ok=True)


def pull_hub(pin: HubPin, task: str, *, advance: Callable[[int], None] = lambda n: None,
             announce: Callable[[str, int, int], None] = lambda what, n, size: None) -> Fetched:
    from huggingface_hub import hf_hub_download

    try:
        commit, listing = _listing(pin)
    except Exception as err:   # noqa: BLE001 - every Hub failure becomes one message
        raise _hub_errors(pin, task, err) from None
    old = _read_record(record_path(pin, commit)) or {"files": {}}
    snapshot = _repo_cache(pin) / "snapshots" / commit
    todo = [p for p in listing if not ((snapshot / p).is_file() and p in old["files"]
                                       and old["files"][p]["size"] == (snapshot / p).stat().st_size)]
    announce(f"{pin.repo} @ {commit[:12]}", len(todo), sum(listing[p]["size"] or 0 for p in todo))
    pinned = dict(pin.files)
    files: dict[str, dict] = {p: old["files"][p] for p in listing if p not in todo}
    advance(sum(int(files[p]["size"]) for p in files))
    for path in todo:
        # a file already in the cache but not in the record (an interrupted pull, a damaged cache) is
        # re-checked; if it fails it is deleted and fetched again once, a fresh download that fails is an error
        for attempt in (0, 1):
            had = (snapshot / path).is_file()
            try:
                local = Path(hf_hub_download(pin.repo, path, repo_type="dataset", revision=commit,
                                             cache_dir=hub_cache(), endpoint=os.environ.get("HF_ENDPOINT") or None))
            except Exception as err:   # noqa: BLE001
                raise _hub_errors(pin, task, err) from None
            digest, size = sha256_file(local), local.stat().st_size
            want, what = (pinned.get(path), "the task file's pin") if pinned.get(path) else \
                (listing[path]["hub_sha256"], "the sha256 the Hub reports")
            if not (want and digest != want) and (listing[path]["size"] is None or size == listing[path]["size"]):
                break
            _discard(local)
            if had and attempt == 0:
                log.warning("%s: cached %s/%s did not match its checksum; downloading it again", task, pin.repo, path)
                continue
            raise RemoteDataError(f"task {task!r}: {pin.repo}/{path} @ {commit[:12]} has sha256 {digest} ({size} "
                                  f"bytes), not {want or '?'} ({listing[path]['size']} bytes) as {what} says; the "
                                  f"file was deleted. Run `slmeval data pull {task}` again; if it repeats, the "
                                  "Hub copy no longer matches the pin")
        files[path] = {"sha256": digest, "size": size}
        advance(size)
    verified, reasons = verdict(pin, files)
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"   # a Hub mirror says so in the record
    record = {"kind": "hub", "repo": pin.repo, "revision": pin.revision, "commit": commit, "files": files,
              "verified": verified, "reasons": reasons, "fetched_from": endpoint}
    atomic_write_text(record_path(pin, commit), json.dumps(record, indent=1, sort_keys=True))
    if not COMMIT.match(pin.revision):   # a moving revision: keep refs/<rev> for offline reruns
        ref = _repo_cache(pin) / "refs" / pin.revision
        before = ref.read_text().strip() if ref.is_file() else None
        if before and before != commit:
            log.warning("%s: %s %r moved from commit %s to %s since the last pull: scores on the two are not "
                        "comparable", task, pin.repo, pin.revision, before, commit)
        if before != commit:
            atomic_write_text(ref, commit)
    return Fetched(snapshot / pin.subdir if pin.subdir else snapshot, verified, reasons, commit, files, endpoint)


def pull(pin: Remote, task: str, **kwargs) -> Fetched:
    if hub_offline():
        raise RemoteDataError(f"task {task!r}: HF_HUB_OFFLINE=1 forbids downloading {pin.describe()}; run "
                              f"`slmeval data pull {task}` with network access")
    if isinstance(pin, HubPin):
        return pull_hub(pin, task, **kwargs)
    from slmeval.data.archive import pull_archive

    return pull_archive(pin, task, **kwargs)
