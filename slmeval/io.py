"""File I/O every layer shares: atomic writes, JSON / JSONL, content hashes, `key=value` options.

Atomic means temp file in the destination folder + `os.replace`: a killed run leaves either the old
file or the new one, never half of one. Files get the permissions an ordinary `open()` would give
(0666 minus the umask) — `mkstemp` alone would leave them private (0600).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from itertools import islice
from typing import IO, Any, Iterable, Iterator

try:                       # a speed-up only (issue 22): every value it gives is the one `json` gives
    import orjson
except ImportError:        # pragma: no cover - a dependency; kept optional so that nothing breaks without it
    orjson = None  # type: ignore[assignment]


def _umask() -> int:
    # os.umask can only be read by setting it; restore at once (process-wide, but instantaneous).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_mode(*, directory: bool = False) -> int:
    """The permissions `open()` / `mkdir()` would give a new file / folder under the current umask."""
    return (0o777 if directory else 0o666) & ~_umask()


@contextmanager
def atomic_path(path: str | Path, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside `path`; whatever the caller writes there replaces `path` on success.

    For writers that want a file name (soundfile, np.save, matplotlib). `suffix` keeps an extension
    some writers infer the format from (default: the target's own suffix).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                    suffix=path.suffix if suffix is None else suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, *, fsync: bool = True) -> None:
    with atomic_path(path, suffix=".tmp") as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())


def atomic_write_text(path: str | Path, text: str | Iterable[str], *, fsync: bool = True) -> None:
    """Write `text` exactly as given (UTF-8, no newline translation); an iterable of strings is written
    piece after piece, never joined into one string (a task's 100,000 sample lines)."""
    if isinstance(text, str):
        atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)
        return
    with atomic_path(path, suffix=".tmp") as tmp:
        with open(tmp, "wb") as fh:
            write_text_parts(fh, text)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())


def write_text_parts(fh: IO[bytes], text: str | Iterable[str], *, block: int = 4096) -> None:
    """`text` to a binary file as UTF-8: a string at once, an iterable of strings `block` pieces per write
    (memory bounded by the block, not by the file)."""
    if isinstance(text, str):
        fh.write(text.encode("utf-8"))
        return
    parts = iter(text)
    while pieces := list(islice(parts, block)):
        fh.write("".join(pieces).encode("utf-8"))


# -- JSON ---------------------------------------------------------------------------------------

def _json_default(obj: object) -> object:
    if hasattr(obj, "item"):            # numpy scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def clean_json(value: object) -> object:
    """NaN/inf are not JSON: they are written as null (a stderr over one item is NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value


def dumps(obj: object, *, sort_keys: bool = False) -> str:
    return json.dumps(clean_json(obj), indent=2, default=_json_default, allow_nan=False,
                      sort_keys=sort_keys) + "\n"


def write_json(path: str | Path, obj: object, *, sort_keys: bool = False) -> None:
    atomic_write_text(path, dumps(obj, sort_keys=sort_keys))


def jsonl_line(row: dict) -> str:
    return json.dumps(clean_json(row), default=_json_default, allow_nan=False) + "\n"


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(jsonl_line(r) for r in rows))


_INT_LIST_CHARS = b"0123456789,-[]"


def int_list_json(seq: Any) -> bytes:
    """`json.dumps(list(map(int, seq))).encode()` — "[3, 14, 15]" — for a sequence of integers (Python or
    numpy ints, or a 1-D integer array); by orjson in one call when what it writes is only integers."""
    if orjson is not None:
        try:
            text = orjson.dumps(seq, option=orjson.OPT_SERIALIZE_NUMPY)
        except (TypeError, orjson.JSONEncodeError):
            text = b""
        if text[:1] == b"[" and text[:2] != b"[[" and not text.translate(None, _INT_LIST_CHARS):
            return text.replace(b",", b", ")
    return json.dumps(list(map(int, seq))).encode()


def read_jsonl_located(path: str | Path, error: type[Exception] = ValueError) -> list[tuple[str, dict]]:
    """("file:line", object) for every line, each a JSON object; a bad line raises `error` naming the file and
    line (blank lines are allowed)."""
    path = Path(path)
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise error(f"{where}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise error(f"{where}: expected a JSON object, got {type(row).__name__}")
            rows.append((where, row))
    return rows


def read_jsonl(path: str | Path) -> list[dict]:
    """Every line a JSON object; an error names the file and line (blank lines are allowed)."""
    return [row for _, row in read_jsonl_located(path)]


# -- hashes -------------------------------------------------------------------------------------

def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, *, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hash of a JSON-able value in canonical form (sorted keys), e.g. a fingerprint of settings."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, default=str).encode())


# -- key=value options ----------------------------------------------------------------------------

def parse_kv(text: str | None, what: str, *, error: type[Exception] = ValueError) -> dict[str, str]:
    """'a=1, b=x' → {'a': '1', 'b': 'x'}; errors name the option (`what`) and the offending piece.

    The one parser behind --model-args, --protocol-args, tokenizer specs and other key=value lists.
    """
    out: dict[str, str] = {}
    for piece in filter(None, (p.strip() for p in (text or "").split(","))):
        key, eq, value = piece.partition("=")
        key = key.strip()
        if not eq or not key:
            raise error(f"{what}: {piece!r} is not key=value")
        if key in out:
            raise error(f"{what}: key {key!r} given twice")
        out[key] = value.strip()
    return out


# -- names that become file names -----------------------------------------------------------------

SAFE_CHARS = "A-Za-z0-9._+-"     # the one file-name alphabet (a regex character-class body)
SAFE_NAME = re.compile(rf"[A-Za-z0-9_][{SAFE_CHARS}]{{0,127}}")


def safe_name(name: object, what: str = "name") -> str:
    """`name` itself when it can be one file-name component everywhere; else ValueError saying why.

    One pattern for every name that becomes a file or folder name (tasks, runs, submissions, synth
    items): letters, digits and `. _ + -`, starting with a letter, digit or `_`, at most 128
    characters — so no separators, no `..`, no hidden files, no option-like `-x`, nothing a shell or a
    file system reads specially.
    """
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise ValueError(f"{what} {name!r} cannot be used as a file name: expected letters, digits and "
                         "'._+-', starting with a letter, digit or '_', at most 128 characters")
    return name


def ensure_inside(path: str | Path, root: str | Path, what: str = "output path") -> Path:
    """The resolved `path` (relative paths are taken relative to `root`), refused with ValueError when
    it lies outside the resolved `root` — through `..`, an absolute path or a symlink."""
    root_resolved = Path(root).resolve()
    target = Path(path)
    resolved = (target if target.is_absolute() else root_resolved / target).resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise ValueError(f"{what} {str(path)!r} resolves to {resolved}, outside {root_resolved}")
    return resolved


# -- writing a run's files ----------------------------------------------------------------------------

class OutputError(ValueError):
    """An output or cache location that cannot be written; the message names it and says what happened."""


def write_files_together(files: dict[Path, str | Iterable[str]], *, what: str = "results",
                         replaces: Iterable[Path] = ()) -> None:
    """Write several text files so that they change together or not at all (a file's text: a string, or
    strings written one after another, e.g. the lines of a samples file).

    Every file is first written in full to a temp file beside its target (the step that can fail: a
    full disk, a read-only folder, a quota); only when all of them are on disk are they renamed into
    place, in the given order (put the index file, e.g. results.json, last). On a failure the temp
    files are removed and every previous file is left exactly as it was.

    The commit withdraws the previous index first, renames the other new files in, removes
    `replaces` (files of the previous set the new one does not rewrite: a task the new run does not
    have), and renames the new index in last — so an index never sits beside files of another set: a
    kill inside the commit (renames and unlinks only, nothing left to write) leaves the old set, no
    index, or the new set.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in files.items():
            path = Path(path)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
                staged.append((Path(tmp_name), path))
                with os.fdopen(fd, "wb") as fh:
                    write_text_parts(fh, text)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp_name, default_mode())
            except OSError as err:
                raise OutputError(f"cannot write {path}: {err.strerror or err}; the previous {what} there "
                                  "are unchanged") from None
        # resolved: `out/x` and a resolved `/abs/out/x` are one file, which must be replaced, never deleted
        new_files = {Path(p).resolve() for p in files}
        stale = [Path(p) for p in replaces if Path(p).resolve() not in new_files]
        if len(staged) > 1 or stale:
            staged[-1][1].unlink(missing_ok=True)      # withdraw the old index before its files change
        for tmp, path in staged[:-1]:
            os.replace(tmp, path)
        for path in stale:
            path.unlink(missing_ok=True)
        for tmp, path in staged[-1:]:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def check_output_path(path: str | Path, option: str, *, folder: bool) -> Path:
    """An output path the user gave, judged before any work: `folder=True` for a folder to write into,
    False for a file to write. A file where the folder goes, a folder where the file goes, or a file
    where one of its parent folders goes is an OutputError naming the option and the path (the write
    at the end would otherwise fail as a traceback, after all the work)."""
    path = Path(path).expanduser()
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path}: is an existing file, not a folder; give a folder (it is created if missing)")
    if not folder and path.is_dir():
        raise OutputError(f"{option} {path}: is an existing folder; give a file name (e.g. {path / 'report.json'})")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{option} {path}: {parent} is a file, so nothing can be written below it")
            break
    return path
