"""Pins of a task's public copy, as its task file writes them (`hub:` / `archive:`; the format and what
"verified" means: slmeval/data/remote.py). Parsing only: nothing here reads the network or the cache."""
from __future__ import annotations

import re
from dataclasses import dataclass

from slmeval.data.base import DataLayoutError

COMMIT = re.compile(r"^[0-9a-f]{40}$")
_HEX = {"sha256": re.compile(r"^[0-9a-f]{64}$"), "md5": re.compile(r"^[0-9a-f]{32}$")}
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class HubPin:
    repo: str
    revision: str                                  # a commit sha pins; a branch / tag moves
    files: tuple[tuple[str, str | None], ...] = ()  # (path in repo, sha256 or None)
    include: tuple[str, ...] = ()                  # globs, when the file list itself is not pinned
    source: str | None = None                      # reader of the snapshot (default: the task's source)
    options: dict | None = None                    # its options (default: the task's options)
    subdir: str = ""                               # folder inside the snapshot given to the reader
    kind: str = "hub"

    def unpinned(self) -> list[str]:
        """Why this copy cannot be verified (empty: fully pinned)."""
        why = []
        if not COMMIT.match(self.revision):
            why.append(f"revision {self.revision!r} is a branch or tag, not a commit sha")
        if self.include:
            why.append("the file list is a pattern, not a pinned list")
        missing = [p for p, s in self.files if s is None]
        if missing:
            why.append(f"no published checksum for {len(missing)} file(s) ({', '.join(missing[:3])})")
        return why

    def describe(self) -> str:
        return f"https://huggingface.co/datasets/{self.repo} @ {self.revision}"


@dataclass(frozen=True)
class ArchivePin:
    url: str
    folder: str                                    # what the archive is unpacked into (the --data-root name)
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    source: str | None = None
    options: dict | None = None
    subdir: str = ""
    kind: str = "archive"

    def unpinned(self) -> list[str]:
        return [] if self.sha256 or self.md5 else ["no published checksum for the archive"]

    def describe(self) -> str:
        return self.url


Remote = HubPin | ArchivePin


def _str(raw: dict, key: str, where: str, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise DataLayoutError(f"{where}: `{key}` must be a non-empty string, got {value!r}")
    return value


def _checksum(value, algo: str, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _HEX[algo].match(value.lower()):
        raise DataLayoutError(f"{where}: {value!r} is not a {algo} hex digest (write null when none is published)")
    return value.lower()


def parse_remote(hub: dict | None, archive: dict | None, where: str) -> Remote | None:
    """The task file's `hub:` / `archive:` mapping as a pin; every problem names `where` and the field."""
    if hub is not None and archive is not None:
        raise DataLayoutError(f"{where}: give `hub` or `archive`, not both")
    if hub is not None:
        where = f"{where}: hub"
        if not isinstance(hub, dict):
            raise DataLayoutError(f"{where}: expected a mapping (repo, revision, files|include, ...)")
        unknown = set(hub) - {"repo", "revision", "files", "include", "source", "options", "subdir"}
        if unknown:
            raise DataLayoutError(f"{where}: unknown field(s) {sorted(unknown)}")
        repo = _str(hub, "repo", where, required=True)
        if not _REPO.match(repo):
            raise DataLayoutError(f"{where}: repo {repo!r} is not a Hub id like org/name")
        if "revision" not in hub:
            raise DataLayoutError(f"{where}: `revision` is required (a commit sha; a branch name such as main "
                                  "is accepted but the data is then never verified)")
        files, include = hub.get("files"), hub.get("include")
        if (files is None) == (include is None):
            raise DataLayoutError(f"{where}: give `files` (path: sha256 or null) or `include` (globs), one of them")
        if files is not None:
            if isinstance(files, list):
                files = dict.fromkeys(files)
            if not isinstance(files, dict) or not files or not all(isinstance(p, str) and p for p in files):
                raise DataLayoutError(f"{where}: `files` maps each path in the repo to its sha256 (or null)")
            files = tuple((p, _checksum(s, "sha256", f"{where}.files[{p}]")) for p, s in files.items())
        if include is not None:
            include = [include] if isinstance(include, str) else include
            if not isinstance(include, list) or not include or not all(isinstance(g, str) and g for g in include):
                raise DataLayoutError(f"{where}: `include` is a glob or a list of globs")
        options = hub.get("options")
        if options is not None and not isinstance(options, dict):
            raise DataLayoutError(f"{where}: `options` must be a mapping of reader options")
        return HubPin(repo, str(_str(hub, "revision", where, required=True)), files or (), tuple(include or ()),
                      _str(hub, "source", where), options, (_str(hub, "subdir", where) or "").strip("/"))
    if archive is not None:
        where = f"{where}: archive"
        if not isinstance(archive, dict):
            raise DataLayoutError(f"{where}: expected a mapping (url, sha256|md5, folder)")
        unknown = set(archive) - {"url", "sha256", "md5", "size", "folder", "source", "options", "subdir"}
        if unknown:
            raise DataLayoutError(f"{where}: unknown field(s) {sorted(unknown)}")
        url = _str(archive, "url", where, required=True)
        if not url.startswith(("https://", "http://")) or not url.endswith(".zip"):
            raise DataLayoutError(f"{where}: url {url!r}: expected an http(s) address of a .zip archive")
        folder = _str(archive, "folder", where, required=True)
        if "/" in folder or folder in (".", ".."):
            raise DataLayoutError(f"{where}: folder {folder!r} must be a plain folder name")
        size = archive.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
            raise DataLayoutError(f"{where}: size must be a positive number of bytes, got {size!r}")
        return ArchivePin(url, folder, _checksum(archive.get("sha256"), "sha256", where),
                          _checksum(archive.get("md5"), "md5", where), size, _str(archive, "source", where),
                          archive.get("options"), (_str(archive, "subdir", where) or "").strip("/"))
    return None
