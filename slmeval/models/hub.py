"""`--model` as a local directory or a Hugging Face Hub id, resolved to files on disk + provenance.

`org/name`, `org/name@rev` or `--model-args revision=R` go through `huggingface_hub.snapshot_download`
(its cache layout `models--org--name/{refs,snapshots,blobs}`, see huggingface/huggingface_hub
src/huggingface_hub/_snapshot_download.py), so a model downloaded once by any HF tool is reused.
`HF_HUB_OFFLINE` / `HF_HUB_CACHE` / `HF_HOME` are read when the model is resolved (not only when
huggingface_hub was first imported), so setting them in a running process works too.

Provenance records the commit sha the files came from. A revision is recorded only when it was
checked: the snapshot folder the Hub (or the cache's `refs/`) resolved it to is named by that sha.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from slmeval.hubfiles import HubFileError, check_snapshot, hub_cache_dir, hub_offline  # noqa: F401 (re-exported)
from slmeval.models.base import ModelError

_HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<rev>[\w./-]+))?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class ResolvedModel:
    directory: Path
    reference: str            # what the user passed, as given
    hub: dict | None          # {"repo_id", "revision", "commit_sha"} for Hub ids / cache snapshots


def download_command(repo_id: str, revision: str | None) -> str:
    return f"hf download {repo_id}" + (f" --revision {revision}" if revision else "")


def _snapshot_of(directory: Path) -> dict | None:
    """A folder inside an HF cache (…/models--org--name/snapshots/<sha>) knows its repo and commit."""
    parts = directory.resolve().parts
    if len(parts) >= 3 and parts[-2] == "snapshots" and _COMMIT.match(parts[-1]) \
            and parts[-3].startswith("models--"):
        return {"repo_id": parts[-3].removeprefix("models--").replace("--", "/"), "revision": None,
                "commit_sha": parts[-1]}
    return None


def resolve_model(reference: str | Path, revision: str | None = None) -> ResolvedModel:
    """A local directory (wins when it exists) or a Hub id → the folder holding the checkpoint."""
    text = str(reference)
    local = Path(text).expanduser()
    match = _HUB_ID.match(text)
    if local.is_dir() or not match or text.startswith((".", "/", "~")):
        if not local.is_dir():
            raise ModelError(f"--model {text!r}: no such directory (and not a Hub id like org/name or "
                             "org/name@revision)")
        snapshot = _snapshot_of(local)
        if revision is not None:
            if snapshot is None or snapshot["commit_sha"] != revision:
                raise ModelError(f"--model-args revision={revision!r} cannot be verified for the local directory "
                                 f"{text}: it is not the Hub cache snapshot of that commit. Pass a Hub id "
                                 "(org/name@revision) to have the revision checked, or drop revision=")
            snapshot["revision"] = revision
        return ResolvedModel(local, text, snapshot)
    repo_id, at_rev = match.group("repo"), match.group("rev")
    if at_rev and revision and at_rev != revision:
        raise ModelError(f"--model {text!r} names revision {at_rev!r} but --model-args revision={revision!r}")
    revision = at_rev or revision
    return _from_hub(text, repo_id, revision)


def _from_hub(text: str, repo_id: str, revision: str | None) -> ResolvedModel:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    offline = hub_offline()
    cache = hub_cache_dir()
    command = download_command(repo_id, revision)
    try:
        folder = snapshot_download(repo_id, revision=revision, cache_dir=cache, local_files_only=offline,
                                   endpoint=os.environ.get("HF_ENDPOINT") or None)
    except GatedRepoError:
        raise ModelError(f"--model {text}: the Hub repository {repo_id} is gated. Accept its licence on "
                         f"https://huggingface.co/{repo_id}, log in (`hf auth login` or HF_TOKEN), then run "
                         f"`{command}`") from None
    except RevisionNotFoundError:
        raise ModelError(f"--model {text}: revision {revision!r} does not exist in {repo_id} on the Hub") from None
    except RepositoryNotFoundError:
        raise ModelError(f"--model {text}: no local folder {text}, and no model {repo_id} on the Hub (a private "
                         "repository needs `hf auth login` or HF_TOKEN)") from None
    except LocalEntryNotFoundError as err:
        why = ("HF_HUB_OFFLINE=1 forbids downloading" if offline
               else f"the Hub could not be reached ({str(err).splitlines()[0][:120]})")
        rev = f" at revision {revision!r}" if revision else ""
        raise ModelError(f"--model {text}: no local folder {text}, and {repo_id}{rev} is not in the Hugging Face "
                         f"cache ({cache}) and {why}. "
                         f"Download it first: `{command}`"
                         + (f" (with HF_HUB_CACHE={cache})" if os.environ.get("HF_HUB_CACHE") else "")) from None
    except ValueError as err:   # huggingface_hub's id validation (HFValidationError)
        raise ModelError(f"--model {text}: not a valid Hub id ({err})") from None
    except Exception as err:    # other HTTP / disk errors from huggingface_hub: still one message
        # (its HTTP client's transport errors, httpx2, are not OSErrors once its own retries are spent)
        if not isinstance(err, OSError) and type(err).__module__.split(".")[0] not in ("httpx", "httpx2"):
            raise
        raise ModelError(f"--model {text}: cannot get {repo_id} from the Hub ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:200]}). Download it with `{command}`") from None
    directory = Path(folder)
    commit = directory.name
    if not _COMMIT.match(commit):   # never record a revision as checked unless the files are that commit's
        raise ModelError(f"--model {text}: huggingface_hub returned {directory}, which is not a snapshot named by "
                         "its commit sha; the revision cannot be verified")
    if revision and _COMMIT.match(revision) and revision != commit:
        raise ModelError(f"--model {text}: asked for commit {revision} but the cache holds {commit}")
    try:   # huggingface_hub does not hash what it downloads: a damaged file is found here, and deleted
        check_snapshot(repo_id, commit, directory, f"--model {text}")
    except HubFileError as err:
        raise ModelError(str(err)) from None
    return ResolvedModel(directory, text, {"repo_id": repo_id, "revision": revision or "main", "commit_sha": commit})
