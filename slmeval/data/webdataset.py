"""WebDataset tar shards (the layout the ZeroSpeech team's Hub copies use, e.g. coml/sWuggy:
`<set>/audio/<split>-NNNNNN.tar` beside a `gold.csv`), read with the standard library's tarfile.

WebDataset groups tar members into samples by key: the member name up to the first dot of its base name
(`a/b/word_1.ogg` → key `a/b/word_1`, field `ogg`). A sLM21 shard holds one audio file per sample whose
base key is the gold.csv `filename`, so the pairs built here are the local layout's pairs with the same
keys and the same audio bytes — scores are identical. Shards are read as streams (one pass, no seeking,
nothing unpacked to disk); the audio of the listed files stays encoded in memory until the units layer
decodes it.
"""
from __future__ import annotations

import logging
import tarfile
from pathlib import Path

from slmeval.data._common import examples, natural_key, require_dir
from slmeval.data.base import READERS, DataLayoutError, Pair, Utterance
from slmeval.data.zerospeech import (GOLD_COLUMNS, LEXICAL_COLUMNS, lexical_pairs, read_gold, sblimp_pairs)

log = logging.getLogger(__name__)

AUDIO_FIELDS = ("wav", "flac", "ogg", "mp3")


def _shards(root: Path, pattern: str) -> list[Path]:
    root = require_dir(Path(root), f"a folder holding WebDataset shards ({pattern})")
    shards = sorted((p for p in root.glob(pattern) if p.is_file()), key=lambda p: natural_key(str(p)))
    if not shards:
        raise DataLayoutError(f"{root}: no WebDataset shard matches {pattern!r}")
    return shards


def _samples(shards: list[Path], wanted: set[str] | None) -> dict[str, dict[str, bytes]]:
    """{base key: {field: bytes}} over all shards; a key in two shards / twice in one is an error."""
    out: dict[str, dict[str, bytes]] = {}
    where: dict[str, Path] = {}
    for shard in shards:
        try:
            with tarfile.open(shard, mode="r|*") as tar:   # a stream: one pass over the shard
                for member in tar:
                    if not member.isfile():
                        continue
                    base = member.name.rsplit("/", 1)[-1]
                    key, dot, fld = base.partition(".")
                    if not dot or (wanted is not None and key not in wanted):
                        continue
                    sample = out.setdefault(key, {})
                    if fld in sample:
                        raise DataLayoutError(f"{shard}: sample {key!r} has two {fld!r} members "
                                              f"(also in {where[key].name})")
                    where[key] = shard
                    data = tar.extractfile(member)
                    sample[fld] = data.read() if data is not None else b""
        except (tarfile.TarError, EOFError) as err:
            raise DataLayoutError(f"{shard}: not a readable tar shard ({err})") from err
    return out


def _audio_by_stem(shards: list[Path], df, gold: Path) -> dict[str, bytes]:
    listed = set(df["filename"])
    samples = _samples(shards, listed)
    audio: dict[str, bytes] = {}
    for key, fields in samples.items():
        found = [f for f in AUDIO_FIELDS if f in fields]
        if len(found) != 1:
            raise DataLayoutError(f"{gold.parent}: sample {key!r} has {len(found)} audio members "
                                  f"({', '.join(sorted(fields))}); expected one of {', '.join(AUDIO_FIELDS)}")
        if not fields[found[0]]:
            raise DataLayoutError(f"{gold.parent}: sample {key!r}: empty {found[0]} member")
        audio[key] = fields[found[0]]
    missing = listed.difference(audio)
    if missing:
        raise DataLayoutError(f"{gold}: {len(missing)} file(s) listed are in no shard "
                              f"({', '.join(p.name for p in shards[:3])}): {examples(missing)}")
    return audio


@READERS.register("zerospeech_sblimp_webdataset")
def read_sblimp_webdataset(root: Path, gold: str = "gold.csv", shards: str = "*.tar") -> list[Pair]:
    """<path>/<gold> (sLM21 syntactic gold.csv) + <path>/<shards> (tar members <filename>.<wav|flac|ogg>)."""
    gold_path = Path(root) / gold
    if not gold_path.is_file():
        raise DataLayoutError(f"{gold_path}: no gold file (expected the sLM21 syntactic gold.csv beside the shards)")
    df = read_gold(gold_path, GOLD_COLUMNS, required=("filename", "type", "subtype", "id", "voice", "correct"))
    return sblimp_pairs(gold_path, df, _audio_by_stem(_shards(root, shards), df, gold_path))


@READERS.register("zerospeech_lexical_webdataset")
def read_lexical_webdataset(root: Path, gold: str = "gold.csv", shards: str = "*.tar") -> list[Pair]:
    """<path>/<gold> (sLM21 lexical gold.csv) + <path>/<shards> (tar members <filename>.<wav|flac|ogg>)."""
    gold_path = Path(root) / gold
    if not gold_path.is_file():
        raise DataLayoutError(f"{gold_path}: no gold file (expected the sLM21 lexical gold.csv beside the shards)")
    df = read_gold(gold_path, LEXICAL_COLUMNS, required=("filename", "correct", "voice", "id"))
    return lexical_pairs(gold_path, df, _audio_by_stem(_shards(root, shards), df, gold_path))


@READERS.register("webdataset_pairs")
def read_webdataset_pairs(root: Path, shards: str = "*.tar", positive: str = "positive",
                          negative: str = "negative") -> list[Pair]:
    """<path>/<shards>: one sample per pair, members <id>.<positive>.<ext> and <id>.<negative>.<ext>."""
    pairs = []
    for key, fields in _samples(_shards(root, shards), None).items():
        sides = {}
        for side in (positive, negative):
            found = [f for f in fields if f.split(".")[0] == side and f.rsplit(".", 1)[-1] in AUDIO_FIELDS]
            if len(found) != 1:
                raise DataLayoutError(f"{root}: sample {key!r} has {len(found)} {side!r} audio member(s) "
                                      f"(members: {', '.join(sorted(fields))}); expected {key}.{side}.wav|flac|ogg")
            sides[side] = fields[found[0]]
        meta = {f: fields[f].decode("utf-8", "replace") for f in fields   # text fields: <id>.txt, <id>.x.cls
                if f.rsplit(".", 1)[-1] in ("txt", "cls")}
        pairs.append(Pair(id=key, positive=Utterance(key=f"{key}/positive", audio=sides[positive]),
                          negative=Utterance(key=f"{key}/negative", audio=sides[negative]), meta=meta))
    pairs.sort(key=lambda p: natural_key(p.id))
    return pairs
