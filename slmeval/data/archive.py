"""Official archives (e.g. the sLM21 zip that the ZeroSpeech `zrc` tool fetches): download with the standard
library (continuing a `.part` file with an HTTP Range request), check the pinned checksum, unpack into a
temporary folder renamed into place. Pins and records: slmeval/data/remote.py.

SLMEVAL_DATA_MIRROR=<http(s) address> fetches every archive from that address instead of the official host:
the archive's path is appended to it (`https://download.zerospeech.com/datasets/sLM21.dataset.zip` with
`SLMEVAL_DATA_MIRROR=https://mirror.example/zr` comes from `https://mirror.example/zr/datasets/sLM21.dataset.zip`),
as HF_ENDPOINT redirects the Hub. The pin (checksums, cache folder) stays the official one's; the record and
the run's provenance say the address the bytes came from (`fetched_from`)."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from slmeval.data.remote import ArchivePin, Fetched, RemoteDataError, archive_dir, record_path, verdict
from slmeval.io import atomic_write_text


MIRROR_ENV = "SLMEVAL_DATA_MIRROR"


def fetch_address(url: str) -> str:
    """The address an archive is downloaded from: `url`, or its path under SLMEVAL_DATA_MIRROR."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return url
    parts = urlsplit(mirror)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise RemoteDataError(f"{MIRROR_ENV}={mirror!r}: expected an http(s) address such as "
                              "https://mirror.example/zerospeech (each archive's path is appended to it), or unset it")
    return mirror.rstrip("/") + urlsplit(url).path


def pull_archive(pin: ArchivePin, task: str, *, advance: Callable[[int], None] = lambda n: None,
                 announce: Callable[[str, int, int], None] = lambda what, n, size: None) -> Fetched:
    import urllib.error
    import urllib.request

    address = fetch_address(pin.url)
    where = pin.url if address == pin.url else f"{address} (mirror of {pin.url}, {MIRROR_ENV})"
    root = archive_dir(pin)
    root.mkdir(parents=True, exist_ok=True)
    part = root / (pin.url.rsplit("/", 1)[-1] + ".part")
    origin = part.with_name(part.name + ".from")   # a `.part` is only continued from the address that began it
    if part.is_file() and (not origin.is_file() or origin.read_text() != address):
        part.unlink()
    start = part.stat().st_size if part.is_file() else 0
    if not start:
        atomic_write_text(origin, address)
    # the standard library is enough here (follows redirects; Range continues a `.part` left by a cut run)
    request = urllib.request.Request(address, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            mode = "ab" if resp.status == 206 else "wb"   # 200: the server ignored Range, start over
            announce(where, 1, pin.size or ((start if mode == "ab" else 0) + (resp.length or 0)))
            advance(start if mode == "ab" else 0)
            with part.open(mode) as fh:
                while True:
                    try:
                        chunk = resp.read(1 << 20)
                    except http.client.IncompleteRead as cut:   # keep what came: the next pull continues it
                        fh.write(cut.partial)
                        raise
                    if not chunk:
                        if resp.length:   # http.client returns short reads silently when the peer hangs up
                            raise http.client.IncompleteRead(b"", resp.length)
                        break
                    fh.write(chunk)
                    advance(len(chunk))
    except urllib.error.HTTPError as err:
        if not (err.code == 416 and start):   # 416 on a Range from the end: the .part is already whole
            raise RemoteDataError(f"task {task!r}: {where} answered HTTP {err.code} ({err.reason})") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise RemoteDataError(f"task {task!r}: downloading {where} stopped ({type(err).__name__}: {err}); run "
                              f"`slmeval data pull {task}` again to continue it") from None
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with part.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            sha.update(chunk)
            md5.update(chunk)
    size = part.stat().st_size
    bad = (pin.sha256 and sha.hexdigest() != pin.sha256) or (pin.md5 and md5.hexdigest() != pin.md5) \
        or (pin.size and size != pin.size)
    if bad:
        part.unlink()
        raise RemoteDataError(f"task {task!r}: {where}: got {size} bytes, sha256 {sha.hexdigest()}, md5 "
                              f"{md5.hexdigest()}; the task file pins sha256={pin.sha256} md5={pin.md5} "
                              f"size={pin.size}. The download was deleted; run `slmeval data pull {task}` again")
    for stale in root.glob(".extract-*"):   # what a run killed while unpacking left: never data
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".extract-{os.getpid()}"
    try:
        with zipfile.ZipFile(part) as zf:
            for name in zf.namelist():   # never write outside the folder (zip slip)
                if name.startswith("/") or ".." in Path(name).parts:
                    raise RemoteDataError(f"task {task!r}: {where}: member {name!r} would unpack outside its folder")
            zf.extractall(tmp)
    except zipfile.BadZipFile as err:
        part.unlink()
        shutil.rmtree(tmp, ignore_errors=True)
        raise RemoteDataError(f"task {task!r}: {where} is not a valid zip archive ({err}); it was deleted") from None
    target = root / pin.folder
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    files = {pin.url.rsplit("/", 1)[-1]: {"sha256": sha.hexdigest(), "md5": md5.hexdigest(), "size": size}}
    verified, reasons = verdict(pin, files)
    atomic_write_text(record_path(pin, None), json.dumps({"kind": "archive", "url": pin.url, "fetched_from": address,
                                                          "files": files, "verified": verified, "reasons": reasons},
                                                         indent=1))
    part.unlink()   # unpacked: the archive itself is not kept (sLM21 is ~30 GB)
    origin.unlink(missing_ok=True)
    return Fetched(target / pin.subdir if pin.subdir else target, verified, reasons, None, files, address)
