"""Pinned downloads: a file (web address or Hub repo file) checked against its sha256, a Hub snapshot at a
commit checked against the Hub's own listing. Downloaded once, cached, never kept half-written or wrong.

- `fetch_file(FileSource)`: the file lands in `<slmeval cache>/downloads/<sha256>/<name>` only after its
  bytes hash to the pinned sha256 (written to a temporary name beside it and renamed: an interrupted or
  corrupted download leaves nothing under the final name). A web address is fetched with urllib; a Hub
  file with `hf_hub_download` (its cache, HF_ENDPOINT / HF_HUB_OFFLINE honoured), then checked and copied.
- `hub_snapshot(repo, revision)`: `snapshot_download` (huggingface_hub's cache, shared with every HF
  tool), then every file checked against the tree listing huggingface_hub cached for that commit (sha256
  of LFS files, git blob sha1 of the others): huggingface_hub itself does not hash what it downloads.
  A bad file is deleted with its snapshot link, so the next run downloads it again.

`HF_HUB_OFFLINE=1`: only the caches are read; a missing file is one error naming the command to run.
Used by the speech-tokenizer presets (slmeval/units/presets.py); any layer may use it.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from slmeval.io import sha256_file

HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<rev>[\w./-]+))?$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
_CHUNK = 1 << 20


class HubFileError(ValueError):
    """A pinned file or snapshot that cannot be had: one message saying what and what to do."""


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_offline() -> bool:
    from huggingface_hub import constants

    return _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE") or bool(constants.HF_HUB_OFFLINE)


def hub_cache_dir() -> Path:
    """HF_HUB_CACHE, else HF_HOME/hub, else huggingface_hub's default — as huggingface_hub's constants do."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.path.expanduser(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        return Path(os.path.expanduser(os.environ["HF_HOME"])) / "hub"
    return Path(constants.HF_HUB_CACHE)


def _endpoint() -> str | None:
    """HF_ENDPOINT as it is now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def downloads_dir() -> Path:
    """$SLMEVAL_CACHE/downloads, else ~/.cache/slmeval/downloads (beside the unit cache)."""
    env = os.environ.get("SLMEVAL_CACHE")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "slmeval") / "downloads"


@dataclass(frozen=True)
class FileSource:
    """Where one pinned file comes from: a web `url`, or `path` in Hub `repo` at `revision` (a commit)."""
    name: str                       # file name in the cache
    sha256: str | None              # None: no published checksum (trust on first use; the caller decides)
    url: str | None = None
    repo: str | None = None
    revision: str | None = None
    path: str | None = None
    repo_type: str = "model"

    def where(self) -> str:
        return self.url or f"{self.repo}@{self.revision}:{self.path}"


def _folder(source: FileSource) -> Path:
    """A pinned file's folder is named by its checksum (so a file found there was verified); an unpinned
    one's by a hash of its address."""
    if source.sha256 is None:
        return downloads_dir() / "unpinned" / hashlib.sha256(source.where().encode()).hexdigest()[:16]
    return downloads_dir() / source.sha256


def cached_file(source: FileSource) -> Path | None:
    """The verified copy, if one is cached."""
    path = _folder(source) / source.name
    return path if path.is_file() else None


def fetch_file(source: FileSource, what: str) -> Path:
    """The file, downloaded once and checked against `source.sha256` (see the module docstring)."""
    found = cached_file(source)
    if found is not None:
        return found
    if hub_offline():
        raise HubFileError(f"{what}: {source.name} is not in the download cache ({downloads_dir()}) and "
                           "HF_HUB_OFFLINE=1 forbids downloading it. Run the same command once with network access "
                           f"(it downloads {source.where()})")
    folder = _folder(source)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{source.name}.{os.getpid()}.partial"
    try:
        digest = _download(source, tmp, what)
        if source.sha256 is not None and digest != source.sha256:
            raise HubFileError(f"{what}: {source.where()} has sha256 {digest}, but {source.sha256} is pinned: "
                               "a corrupted download or a changed file. Nothing was kept; run again, and if it "
                               "persists the published file changed (report it)")
        os.replace(tmp, folder / source.name)
    finally:
        tmp.unlink(missing_ok=True)
    return folder / source.name


def _download(source: FileSource, tmp: Path, what: str) -> str:
    """Write the bytes to `tmp`, returning their sha256."""
    h = hashlib.sha256()
    if source.url is not None:
        try:
            with urllib.request.urlopen(source.url, timeout=60) as response, open(tmp, "wb") as out:
                expected = response.headers.get("Content-Length")
                n = 0
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    n += len(chunk)
            if expected is not None and n != int(expected):
                raise HubFileError(f"{what}: the download of {source.url} stopped after {n} of {expected} bytes; "
                                   "nothing was kept. Run again")
        except urllib.error.HTTPError as err:
            raise HubFileError(f"{what}: {source.url} answered HTTP {err.code} ({err.reason})") from None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as err:
            if isinstance(err, HubFileError):
                raise
            raise HubFileError(f"{what}: cannot download {source.url} ({err}); nothing was kept. Check the "
                               "network and run again") from None
        return h.hexdigest()
    from huggingface_hub import hf_hub_download

    got = Path(_hub_call(lambda: hf_hub_download(source.repo, source.path, revision=source.revision,
                                                 repo_type=source.repo_type, cache_dir=hub_cache_dir(),
                                                 endpoint=_endpoint()),
                         source.repo, source.revision, what, source.repo_type))
    digest = sha256_file(got)
    if source.sha256 is not None and digest != source.sha256:
        _evict(got)   # huggingface_hub's copy is wrong too: the next try must download it again
    else:
        shutil.copyfile(got, tmp)
    return digest


def _evict(path: Path) -> None:
    """Remove a cached Hub file: its snapshot link and the blob it points at."""
    blob = path.resolve()
    path.unlink(missing_ok=True)
    if blob != path:
        blob.unlink(missing_ok=True)


def _hub_call(call, repo: str, revision: str | None, what: str, repo_type: str = "model"):
    """Run a huggingface_hub download; its exceptions become one HubFileError naming what to do."""
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    rev = f" at revision {revision}" if revision else ""
    command = f"hf download {repo}" + (f" --revision {revision}" if revision else "") + \
        (f" --repo-type {repo_type}" if repo_type != "model" else "")
    try:
        return call()
    except GatedRepoError:
        raise HubFileError(f"{what}: the Hub repository {repo} is gated. Accept its licence on "
                           f"https://huggingface.co/{repo}, log in (`hf auth login` or HF_TOKEN), then run "
                           f"`{command}`") from None
    except RevisionNotFoundError:
        raise HubFileError(f"{what}: revision {revision!r} does not exist in {repo} on the Hub (moved or "
                           "deleted); a preset pins a commit, so the repository history was rewritten: report it")\
            from None
    except RepositoryNotFoundError:
        raise HubFileError(f"{what}: no {repo_type} {repo} on the Hub (a private repository needs "
                           "`hf auth login` or HF_TOKEN)") from None
    except EntryNotFoundError as err:
        raise HubFileError(f"{what}: {repo}{rev} has no such file ({str(err).splitlines()[-1][:160]})") from None
    except LocalEntryNotFoundError as err:
        why = ("HF_HUB_OFFLINE=1 forbids downloading" if hub_offline()
               else f"the Hub could not be reached ({str(err).splitlines()[0][:160]})")
        raise HubFileError(f"{what}: {repo}{rev} is not in the Hugging Face cache ({hub_cache_dir()}) and {why}. "
                           f"Download it first: `{command}`") from None
    except Exception as err:   # other HTTP errors, a dropped connection after the retries, a full disk
        # huggingface_hub lets its HTTP client's transport errors (httpx2: not OSErrors) through when its
        # own retries are spent: they are network failures like the others
        if not isinstance(err, OSError) and type(err).__module__.split(".")[0] not in ("httpx", "httpx2"):
            raise
        raise HubFileError(f"{what}: cannot get {repo}{rev} from the Hub ({type(err).__name__}: "
                           f"{str(err).splitlines()[0][:200]}); nothing half-written is used. Run again, or "
                           f"`{command}`") from None


def hub_snapshot(repo: str, revision: str | None, what: str) -> tuple[Path, str]:
    """(snapshot folder, commit sha) of a Hub model repo, every file checked against the Hub's listing."""
    from huggingface_hub import snapshot_download

    folder = Path(_hub_call(lambda: snapshot_download(repo, revision=revision, cache_dir=hub_cache_dir(),
                                                      local_files_only=hub_offline(), endpoint=_endpoint()),
                            repo, revision, what))
    commit = folder.name
    if not COMMIT.match(commit) or (revision and COMMIT.match(revision) and revision != commit):
        raise HubFileError(f"{what}: huggingface_hub returned {folder}, not the snapshot of {revision}")
    check_snapshot(repo, commit, folder, what)
    return folder, commit


def check_snapshot(repo: str, commit: str, folder: Path, what: str) -> None:
    """Every file of the snapshot hashes to the name of its blob: huggingface_hub names a blob by the ETag the
    Hub sent (the sha256 of an LFS file, the git blob sha1 of any other), so a blob whose bytes do not match
    its name was damaged on the way. Files the cached listing names must all be there."""
    from huggingface_hub import get_cached_repo_tree
    from huggingface_hub.errors import CachedRepoTreeNotFoundError

    # checked once per snapshot: the mark lives in that very cache (models--org--name/.slmeval-verified/)
    marker = folder.parent.parent / ".slmeval-verified" / commit
    if marker.is_file():
        return
    try:
        listed = [entry.path for entry in get_cached_repo_tree(repo, revision=commit, cache_dir=hub_cache_dir())]
    except CachedRepoTreeNotFoundError:
        listed = []   # a snapshot another tool downloaded without the listing: check what is there
    bad = [f"{p} (missing)" for p in listed if not (folder / p).is_file()]
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        blob = path.resolve().name
        if len(blob) == 64:
            ok = sha256_file(path) == blob
        elif len(blob) == 40:
            data = path.read_bytes()
            ok = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == blob
        else:
            continue    # not a huggingface_hub blob (a hand-made cache): nothing to compare with
        if not ok:
            bad.append(path.relative_to(folder).as_posix())
            _evict(path)
    if bad:
        raise HubFileError(f"{what}: {repo}@{commit}: {', '.join(bad)} do not match the Hub's checksums (a "
                           "corrupted or interrupted download); the bad files were deleted from the cache. Run again")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(commit)
