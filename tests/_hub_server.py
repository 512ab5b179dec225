"""A stand-in Hugging Face Hub for tests: model and dataset repos served from local folders on 127.0.0.1.

It answers the requests the installed huggingface_hub makes for `hf_hub_download` / `snapshot_download`
(read in huggingface_hub's file_download.py, _snapshot_download.py, hf_api.py and utils/_http.py):

  GET  /api/{models,datasets}/<id>[/revision/<rev>]        repo info: `sha` = the commit the revision names
  GET  /api/{models,datasets}/<id>/tree/<rev>[/<dir>]       file listing (path, size, oid, lfs)
  POST /api/{models,datasets}/<id>/paths-info/<rev>         the same for named paths
  HEAD|GET /[datasets/]<id>/resolve/<rev>/<path>            file metadata / content

Headers as the real Hub sends them: `X-Repo-Commit` on every resolve answer; a regular (git) file answers
200 with `ETag` = its git blob sha1 and `Content-Length`; an LFS file (binary suffixes, as the Hub's default
.gitattributes puts them in LFS) answers 302 with `X-Linked-Etag` = its sha256, `X-Linked-Size` and a
`Location` on a second port (the "CDN": another origin, so huggingface_hub takes the metadata from the
redirect and sends the GET there, as it does with the real CDN). Errors carry `X-Error-Code`
(RepoNotFound / RevisionNotFound / EntryNotFound / GatedRepo), which huggingface_hub maps to its exceptions.
`Range: bytes=N-` is honoured (huggingface_hub resumes an interrupted download with it).

Fixture API (`hub` fixture; import it into a test module: `from _hub_server import hub  # noqa: F401`):

    sha = hub.add("org/name", folder)                         # commit the folder, move `main` to it
    hub.add("org/data", folder, repo_type="dataset", revision="v1")
    hub.add("org/name", other_folder)                         # a revision that moved: `main` -> new commit
    hub.gate("org/name")                                      # 401 GatedRepo unless the token is hub.TOKEN
    hub.fault("org/name", "model.bin", "truncate", times=1)   # or "drop" (no answer) / "corrupt" (bytes flipped)
    url = hub.add_web_file("km.bin", data)                    # a plain web address (faults: hub.fault("web", name, ..))
    hub.downloads("org/name")                                 # file paths whose content was served (in order)
    hub.offline(monkeypatch)                                  # HF_HUB_OFFLINE=1 from now on
    hub.log                                                   # every request: method, path, status

The fixture points HF_ENDPOINT (and huggingface_hub's constants, which read it at import) at the server,
gives each test an empty HF_HUB_CACHE, and makes huggingface_hub's 1 s pause between download retries 0 s.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import threading
import types
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

# Suffixes the Hub's default .gitattributes stores in LFS (huggingface_hub serves those through the CDN).
LFS_SUFFIXES = {".bin", ".safetensors", ".pt", ".pth", ".ckpt", ".npy", ".npz", ".pkl", ".pickle", ".joblib",
                ".h5", ".onnx", ".parquet", ".arrow", ".tar", ".gz", ".zip", ".wav", ".flac", ".mp3", ".ogg",
                ".model"}


def git_blob_sha1(data: bytes) -> str:
    """The oid git (and the Hub's ETag for a non-LFS file) gives a blob."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class _Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)   # sha -> {path: bytes}
    refs: dict[str, str] = field(default_factory=dict)                   # branch/tag -> sha
    gated: bool = False
    lfs: set[str] = field(default_factory=set)                          # paths stored in LFS


@dataclass
class _Fault:
    kind: str                   # truncate | drop | corrupt
    times: int | None           # None: every request


class StandInHub:
    TOKEN = "hf_standin_token"

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], _Repo] = {}
        self.faults: dict[tuple[str, str, str], _Fault] = {}
        self.web: dict[str, bytes] = {}
        self.log: list[dict] = []
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._cdn = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.cdn = f"http://127.0.0.1:{self._cdn.server_address[1]}"
        for server in (self._server, self._cdn):
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    # ---- building repos -------------------------------------------------------------------------------
    def add(self, repo_id: str, folder: Path | str | dict[str, bytes], *, repo_type: str = "model",
            revision: str = "main", lfs: set[str] | None = None) -> str:
        """Commit a folder's files (or {path: bytes}) and point `revision` at the commit; returns its sha."""
        if isinstance(folder, dict):
            files = dict(folder)
        else:
            root = Path(folder)
            files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
        repo = self.repos.setdefault((repo_type, repo_id), _Repo())
        listing = "".join(f"{path}\0{git_blob_sha1(data)}\n" for path, data in sorted(files.items()))
        sha = hashlib.sha1(f"{repo_type}/{repo_id}\n{len(repo.commits)}\n{listing}".encode()).hexdigest()
        repo.commits[sha] = files
        repo.refs[revision] = sha
        repo.lfs |= {p for p in files if Path(p).suffix in LFS_SUFFIXES} | set(lfs or ())
        return sha

    def add_web_file(self, name: str, data: bytes) -> str:
        """A plain web download (like dl.fbaipublicfiles.com's k-means files), at the returned address; fault
        it with `fault("web", name, kind)`."""
        self.web[name] = data
        return f"{self.endpoint}/web/{name}"

    def gate(self, repo_id: str, repo_type: str = "model") -> None:
        self.repos[(repo_type, repo_id)].gated = True

    def fault(self, repo_id: str, path: str, kind: str, *, times: int | None = None,
              repo_type: str = "model") -> None:
        """Break the next `times` content downloads of one file (None: all of them)."""
        assert kind in ("truncate", "drop", "corrupt"), kind
        self.faults[(repo_type, repo_id, path)] = _Fault(kind, times)

    def heal(self) -> None:
        self.faults.clear()

    def downloads(self, repo_id: str, repo_type: str = "model") -> list[str]:
        """Files whose content was served in full (200/206, no fault), in request order."""
        return [e["file"] for e in self.log if e.get("repo") == (repo_type, repo_id) and e["method"] == "GET"
                and e.get("file") and e["status"] in (200, 206) and not e.get("fault")]

    def offline(self, monkeypatch) -> None:
        import huggingface_hub.constants as constants

        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    def close(self) -> None:
        for server in (self._server, self._cdn):
            server.shutdown()
            server.server_close()

    # ---- lookups the handler uses ---------------------------------------------------------------------
    def _commit(self, repo: _Repo, revision: str) -> str | None:
        revision = unquote(revision)
        if revision in repo.commits:
            return revision
        return repo.refs.get(revision)

    def _entry(self, path: str, data: bytes, lfs: bool) -> dict:
        entry = {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(data)}
        if lfs:   # the pointer file is what git stores; its size is what the Hub reports as pointerSize
            sha256 = hashlib.sha256(data).hexdigest()
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n"
            entry.update(oid=git_blob_sha1(pointer.encode()),
                         lfs={"oid": sha256, "size": len(data), "pointerSize": len(pointer)})
        return entry


class _Handler(http.server.BaseHTTPRequestHandler):
    hub: StandInHub
    protocol_version = "HTTP/1.1"   # keep-alive + Content-Length framing, so a short body is detectable

    def log_message(self, *args) -> None:
        pass

    # ---- plumbing -------------------------------------------------------------------------------------
    def _record(self, status: int, **extra) -> None:
        with self.hub._lock:
            self.hub.log.append({"method": self.command, "path": self.path, "status": status,
                                 "range": self.headers.get("Range"), **extra})

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, **log) -> None:
        self._record(status, **log)
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data, headers: dict | None = None, **log) -> None:
        self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})}, **log)

    def _error(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(status, body, {"Content-Type": "application/json", "X-Error-Code": code,
                                  "X-Error-Message": message, **(headers or {})})

    def _repo(self, repo_type: str, repo_id: str) -> _Repo | None:
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository not found: {repo_type} {repo_id}")
            return None
        if repo.gated and self.headers.get("Authorization") != f"Bearer {self.hub.TOKEN}":
            self._error(401, "GatedRepo", f"Access to {repo_type} {repo_id} is restricted. You must have access "
                        "to it and be authenticated to access it. Please log in.")
            return None
        return repo

    # ---- routes ---------------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        if parts[:1] == ["cdn"]:
            return self._cdn(parts[1:])
        if parts[:1] == ["web"] and len(parts) >= 2:   # a name may hold folders (a mirror keeps the path)
            name = "/".join(parts[1:])
            if name not in self.hub.web:
                return self._send(404, b"Not Found", {"Content-Type": "text/plain"})
            return self._content("model", "web", name, self.hub.web[name], {"ETag": '"web"'})
        if parts[:1] == ["api"] and len(parts) >= 4 and parts[1] in ("models", "datasets"):
            return self._api(parts[1][:-1], parts[2:], parse_qs(url.query))
        repo_type = "model"
        if parts[:1] == ["datasets"]:
            repo_type, parts = "dataset", parts[1:]
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(repo_type, "/".join(parts[:2]), parts[3], unquote("/".join(parts[4:])))
        self._error(404, "NotFound", f"no route for {url.path}")

    def _api(self, repo_type: str, rest: list[str], query: dict) -> None:
        repo_id, rest = "/".join(rest[:2]), rest[2:]
        repo = self._repo(repo_type, repo_id)
        if repo is None:
            return
        action, revision = (rest[0], rest[1]) if len(rest) >= 2 else ("revision", "main")
        sha = self.hub._commit(repo, revision)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {unquote(revision)}")
        files = repo.commits[sha]
        if action == "revision":
            return self._json({"_id": sha[:24], "id": repo_id, "sha": sha, "private": False,
                               "gated": "auto" if repo.gated else False, "disabled": False, "downloads": 0,
                               "likes": 0, "tags": [], "siblings": [{"rfilename": p} for p in sorted(files)]})
        if action == "tree":
            prefix = "/".join(unquote(p) for p in rest[2:])
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            entries, folders = [], set()
            for path in sorted(files):
                if prefix and not path.startswith(prefix + "/"):
                    continue
                tail = path[len(prefix) + 1:] if prefix else path
                if "/" in tail and not recursive:
                    folders.add((prefix + "/" if prefix else "") + tail.split("/")[0])
                    continue
                if recursive:   # the Hub lists the folders too in a recursive listing
                    for i, _ in enumerate(tail.split("/")[:-1]):
                        folders.add((prefix + "/" if prefix else "") + "/".join(tail.split("/")[:i + 1]))
                entries.append(self.hub._entry(path, files[path], path in repo.lfs))
            entries += [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest()}
                        for f in sorted(folders)]
            return self._json(entries)
        if action == "paths-info" and self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            return self._json([self.hub._entry(p, files[p], p in repo.lfs) for p in form.get("paths", [])
                               if p in files])
        self._error(404, "NotFound", f"no API route {action}")

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo(repo_type, repo_id)
        if repo is None:
            return
        sha = self.hub._commit(repo, revision)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {unquote(revision)}")
        files = repo.commits[sha]
        if path not in files:
            return self._error(404, "EntryNotFound", f"{path} does not exist on \"{unquote(revision)}\"",
                               {"X-Repo-Commit": sha})
        data = files[path]
        if path in repo.lfs:
            sha256 = hashlib.sha256(data).hexdigest()
            self._record(302, repo=(repo_type, repo_id), redirect=True)
            self.send_response(302)
            for key, value in {"Location": f"{self.hub.cdn}/cdn/{repo_type}/{repo_id}/{sha}/{sha256}/{path}",
                               "X-Repo-Commit": sha, "X-Linked-Etag": f'"{sha256}"', "X-Linked-Size": len(data),
                               "ETag": f'"{git_blob_sha1(data)}"', "Content-Length": 0}.items():
                self.send_header(key, str(value))
            self.end_headers()
            return
        self._content(repo_type, repo_id, path, data,
                      {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha1(data)}"'})

    def _cdn(self, parts: list[str]) -> None:
        repo_type, repo_id, sha, path = parts[0], "/".join(parts[1:3]), parts[3], unquote("/".join(parts[5:]))
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None or sha not in repo.commits or path not in repo.commits[sha]:
            return self._send(404, b"NoSuchKey")
        data = repo.commits[sha][path]
        self._content(repo_type, repo_id, path, data, {"ETag": f'"{hashlib.sha256(data).hexdigest()}"'})

    def _content(self, repo_type: str, repo_id: str, path: str, data: bytes, headers: dict) -> None:
        start = 0
        if self.headers.get("Range", "").startswith("bytes="):
            start = int(self.headers["Range"][6:].split("-")[0] or 0)
        status, body = (206, data[start:]) if start else (200, data)
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        headers["Accept-Ranges"] = "bytes"
        fault = self._take_fault(repo_type, repo_id, path) if self.command == "GET" else None
        log = {"repo": (repo_type, repo_id), "file": path}
        if fault is None:
            return self._send(status, body, headers, **log)
        if fault == "corrupt":   # same length, different bytes: only a checksum can tell
            return self._send(status, bytes(b ^ 0xFF for b in body[:64]) + body[64:], headers, fault=fault, **log)
        self._record(status, fault=fault, **log)
        self.close_connection = True
        if fault == "truncate":  # promise the whole body, send half of it, hang up
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, str(value))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
        self.connection.shutdown(2)   # "drop": hang up without an answer

    def _take_fault(self, repo_type: str, repo_id: str, path: str) -> str | None:
        with self.hub._lock:
            fault = self.hub.faults.get((repo_type, repo_id, path))
            if fault is None or fault.times == 0:
                return None
            if fault.times is not None:
                fault.times -= 1
            return fault.kind


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running stand-in Hub, HF_ENDPOINT pointing at it, an empty HF_HUB_CACHE, online mode."""
    import huggingface_hub.constants as constants
    import huggingface_hub.file_download as file_download

    server = StandInHub()
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    # huggingface_hub reads HF_ENDPOINT once, at import: its URL template and default endpoint follow it here.
    monkeypatch.setattr(constants, "ENDPOINT", server.endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.delenv("HF_HOME", raising=False)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "no_token"))   # never a real token from this machine
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no_token"))
    # huggingface_hub waits 1 s before resuming an interrupted download; the faults here need no wait.
    monkeypatch.setattr(file_download, "time", types.SimpleNamespace(sleep=lambda s: None, time=__import__("time").time))
    yield server
    server.close()
