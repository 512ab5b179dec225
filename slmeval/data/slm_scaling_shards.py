"""slm_scaling's packed unit shards (tiagoCuervo/slm_scaling, DATA.md "Packed schema"; writer
src/slm_data/packing.py `ShardWriter`, checks src/slm_data/schema.py `validate_shard`, reader
`PackedShard`), read without slm_scaling installed:

- `meta.json`: `schema_version` (2), `num_samples`, `num_audio_steps`, `num_skipped`,
  `preprocessing` (`eos_token` = K, `pad_token` = K + 1, `vocab_size` = K + 2, the HuBERT / k-means
  pins), `checksums` (sha256 of each file);
- `audio.bin`: every sample's codes one after another, int16 (numpy `tofile`, little-endian);
- `audio.len`: one int64 length per sample (the codes of sample i are the next `len[i]` of audio.bin);
- `samples.jsonl`: one row per sample, in the same order: `id`, `audio_steps` (= its length) and the
  manifest's metadata (evaluation shards: `group_id`, `correct`, `pair_id`, `phenomenon`, ...);
- `skips.jsonl`: records that could not be encoded, one per line.

Every sample ends with the EOS code: src/slm_data/backends.py `collapse_codes` appends it before
collapsing runs. Here the terminal EOS is split off: the units are what a tokenizer would give for the
audio, and whether EOS is scored is the scorer's choice (slm_scaling's `--task loss` scores it, its
pair tasks do not: src/slm/evaluate.py `_evaluation_pair`).

Pair tasks (sBLIMP, StoryCloze; src/slm/evaluate.py `summarize`): samples are grouped by `group_id`,
or without one by the id minus its `_correct` / `_incorrect` suffix; `correct` (default: the id ends
in `_correct`) marks the positive.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slmeval.data._common import natural_key
from slmeval.data.base import READERS, DataLayoutError, Pair, Utterance
from slmeval.io import sha256_file

SCHEMA_VERSION = 2            # slm_data/schema.py SCHEMA_VERSION
FILES = ("meta.json", "audio.bin", "audio.len", "samples.jsonl")
# samples.jsonl fields that describe the sample itself, not the item it belongs to
_SAMPLE_FIELDS = {"id", "audio_steps", "correct", "group_id", "prepared_audio"}
# preprocessing fields that decide what a unit means (prepare.py encode_shard); the rest (manifest and
# plan hashes, record counts) differ from shard to shard of one split by design
TOKENIZER_KEYS = ("unit_extractor", "collapsed", "hubert_model", "hubert_revision", "hubert_layer", "hubert_normalize",
                  "kmeans", "vocab_size", "eos_token", "pad_token", "sample_rate")


@dataclass
class PackedUnits:
    """The samples of one or more shards, in order: units without the terminal EOS."""

    ids: list[str]
    units: list[list[int]]
    ended_with_eos: list[bool]        # the stored sequence ended with the shard's EOS code
    rows: list[dict]                  # samples.jsonl rows
    shards: list[Path]
    n_skipped: int                    # records the encoder could not encode (skips.jsonl)
    tokenizer: dict                   # the TOKENIZER_KEYS of meta.json preprocessing (equal in every shard)


def shard_dirs(path: Path) -> list[Path]:
    """A shard folder (it holds meta.json), or a split folder of shard folders (each holding one)."""
    path = Path(path)
    if not path.is_dir():
        raise DataLayoutError(f"{path}: not a folder (expected an slm_scaling shard: {', '.join(FILES)})")
    if (path / "meta.json").is_file():
        return [path]
    found = sorted((p for p in path.iterdir() if p.is_dir() and (p / "meta.json").is_file()),
                   key=lambda p: natural_key(p.name))
    if not found:
        raise DataLayoutError(f"{path}: no meta.json here or in its sub-folders (expected an slm_scaling shard "
                              f"folder with {', '.join(FILES)}, or a folder of such shards)")
    return found


def _meta(shard: Path) -> dict:
    where = shard / "meta.json"
    try:
        meta = json.loads(where.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataLayoutError(f"{where}: not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise DataLayoutError(f"{where}: expected a JSON object")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise DataLayoutError(f"{where}: schema_version {meta.get('schema_version')!r}; this reader reads "
                              f"{SCHEMA_VERSION} (slm_scaling src/slm_data/schema.py)")
    for key in ("num_samples", "num_audio_steps"):
        if not isinstance(meta.get(key), int) or isinstance(meta.get(key), bool):
            raise DataLayoutError(f"{where}: {key} = {meta.get(key)!r}; expected an integer")
    pre = meta.get("preprocessing")
    if not isinstance(pre, dict) or not isinstance(pre.get("eos_token"), int) or isinstance(pre["eos_token"], bool):
        raise DataLayoutError(f"{where}: preprocessing.eos_token is missing or not an integer (the EOS code "
                              "every sample ends with)")
    return meta


def _verify_checksums(shard: Path, meta: dict) -> None:
    sums = meta.get("checksums")
    if not isinstance(sums, dict) or not sums:
        raise DataLayoutError(f"{shard / 'meta.json'}: no `checksums` (sha256 of each file); "
                              "pass verify_checksums=false to read it unverified")
    for name, expected in sorted(sums.items()):
        target = shard / name
        if Path(name).is_absolute() or ".." in Path(name).parts or not target.is_file():
            raise DataLayoutError(f"{shard / 'meta.json'}: checksums names {name!r}, which is not a file of the shard")
        got = sha256_file(target)
        if got != expected:
            raise DataLayoutError(f"{target}: sha256 {got} but meta.json says {expected} (changed or truncated)")


def _rows(shard: Path, n: int) -> list[dict]:
    where = shard / "samples.jsonl"
    rows = []
    try:
        lines = where.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as err:
        raise DataLayoutError(f"{where}: not UTF-8 text ({err})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataLayoutError(f"{where}:{lineno}: invalid JSON ({err.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str) or not row["id"]:
            raise DataLayoutError(f"{where}:{lineno}: expected a JSON object with a non-empty string `id`")
        rows.append(row)
    if len(rows) != n:
        raise DataLayoutError(f"{where}: {len(rows)} rows but meta.json num_samples = {n}")
    return rows


def read_shard(shard: Path, *, verify_checksums: bool = True) -> tuple[list[dict], list[np.ndarray], dict]:
    """(samples.jsonl rows, each sample's stored codes, meta.json) of one shard, with slm_scaling's own
    consistency checks (schema.py validate_shard)."""
    for name in FILES:
        if not (shard / name).is_file():
            raise DataLayoutError(f"{shard}: {name} is missing (an slm_scaling shard holds {', '.join(FILES)})")
    meta = _meta(shard)
    if verify_checksums:
        _verify_checksums(shard, meta)
    n = meta["num_samples"]
    len_size = (shard / "audio.len").stat().st_size
    if len_size != 8 * n:
        raise DataLayoutError(f"{shard / 'audio.len'}: {len_size} bytes; expected {8 * n} (num_samples {n} × int64)")
    lengths = np.fromfile(shard / "audio.len", dtype="<i8")
    if n and lengths.min() <= 0:
        raise DataLayoutError(f"{shard / 'audio.len'}: sample {int(np.argmin(lengths))} has length "
                              f"{int(lengths.min())}; every sample holds at least its EOS")
    total = int(lengths.sum())
    if total != meta["num_audio_steps"]:
        raise DataLayoutError(f"{shard / 'audio.len'}: lengths sum to {total} but meta.json num_audio_steps = "
                              f"{meta['num_audio_steps']}")
    bin_size = (shard / "audio.bin").stat().st_size
    if bin_size != 2 * total:
        raise DataLayoutError(f"{shard / 'audio.bin'}: {bin_size} bytes; expected {2 * total} "
                              f"({total} codes × int16, from audio.len)")
    # Memory-mapped: a training-size shard is not copied; each sample is converted when it is taken.
    codes = np.memmap(shard / "audio.bin", dtype="<i2", mode="r") if total else np.zeros(0, dtype="<i2")
    vocab = meta["preprocessing"].get("vocab_size")
    if total and (codes.min() < 0 or (isinstance(vocab, int) and codes.max() >= vocab)):
        raise DataLayoutError(f"{shard / 'audio.bin'}: codes span {int(codes.min())}..{int(codes.max())}, outside "
                              f"the declared vocabulary 0..{vocab - 1 if isinstance(vocab, int) else '?'}")
    rows = _rows(shard, n)
    steps = [row.get("audio_steps") for row in rows]
    mismatch = [i for i, (s, ln) in enumerate(zip(steps, lengths.tolist())) if s != ln]
    if mismatch:
        i = mismatch[0]
        raise DataLayoutError(f"{shard / 'samples.jsonl'}: sample {rows[i]['id']!r} has audio_steps {steps[i]!r} "
                              f"but audio.len says {int(lengths[i])} ({len(mismatch)} such samples)")
    bounds = np.concatenate(([0], np.cumsum(lengths)))
    seqs = [codes[bounds[i]:bounds[i + 1]] for i in range(n)]
    return rows, seqs, meta


def read_packed_units(path: Path, *, verify_checksums: bool = True) -> PackedUnits:
    """Every sample of the shard(s) at `path` as units (terminal EOS split off). An EOS or PAD code
    inside a sample, or a sample with no unit before its EOS, is an error naming the sample."""
    out = PackedUnits([], [], [], [], shard_dirs(path), 0, {})
    seen: dict[str, Path] = {}
    for k, shard in enumerate(out.shards):
        rows, seqs, meta = read_shard(shard, verify_checksums=verify_checksums)
        pre = meta["preprocessing"]
        tokenizer = {key: pre[key] for key in TOKENIZER_KEYS if key in pre}
        if k == 0:
            out.tokenizer = tokenizer
        elif tokenizer != out.tokenizer:     # units of two tokenizers are not one data set
            key = next(x for x in TOKENIZER_KEYS if tokenizer.get(x) != out.tokenizer.get(x))
            raise DataLayoutError(f"{shard / 'meta.json'}: preprocessing.{key} = {tokenizer.get(key)!r} but "
                                  f"{out.shards[0] / 'meta.json'} has {out.tokenizer.get(key)!r}: the shards were "
                                  "encoded differently")
        skipped = meta.get("num_skipped", 0)
        out.n_skipped += skipped if isinstance(skipped, int) else 0
        eos = int(pre["eos_token"])
        for row, seq in zip(rows, seqs):
            sid = row["id"]
            if sid in seen:
                raise DataLayoutError(f"{shard / 'samples.jsonl'}: sample id {sid!r} also in {seen[sid]}")
            seen[sid] = shard
            seq = np.asarray(seq, dtype=np.int64)
            ended = bool(seq[-1] == eos)
            body = seq[:-1] if ended else seq
            if len(body) and body.max() >= eos:
                raise DataLayoutError(f"{shard}: sample {sid!r} holds code {int(body.max())} before its end; units "
                                      f"are 0..{eos - 1} (EOS = {eos} ends a sample, PAD = {eos + 1} is never stored)")
            if not len(body):
                raise DataLayoutError(f"{shard}: sample {sid!r} holds no unit before its EOS")
            out.ids.append(sid)
            out.units.append(body.tolist())
            out.ended_with_eos.append(ended)
            out.rows.append(row)
    return out


def _group(row: dict, where: str) -> tuple[str, bool]:
    """(group, is the correct option) as slm_scaling's summarize decides them."""
    sid = row["id"]
    group = row.get("group_id")
    if group is None:
        if not sid.endswith(("_correct", "_incorrect")):
            raise DataLayoutError(f"{where}: sample {sid!r} has no group_id and its id does not end in "
                                  "_correct / _incorrect (how slm_scaling groups the options of one item)")
        group = sid.rsplit("_", 1)[0]
    correct = row.get("correct", sid.endswith("_correct"))
    if correct not in (True, False, 0, 1):   # bool("false") would be True: refuse anything but a boolean
        raise DataLayoutError(f"{where}: sample {sid!r} has correct = {json.dumps(correct)}; expected true or false")
    return str(group), bool(correct)


@READERS.register("slm_scaling_shard")
def read_slm_scaling_shard(path: Path, verify_checksums: bool = True) -> list[Pair]:
    """<path>: an slm_scaling packed shard (meta.json, audio.bin, audio.len, samples.jsonl) or a folder of them; pairs by group_id/correct."""
    if not isinstance(verify_checksums, bool):     # a YAML "no" is a string, and truthy
        raise DataLayoutError(f"{path}: option verify_checksums = {verify_checksums!r}; expected true or false")
    packed = read_packed_units(path, verify_checksums=verify_checksums)
    where = f"{path}/samples.jsonl" if len(packed.shards) == 1 else f"{path} (shards)"
    groups: dict[str, list[tuple[bool, int]]] = {}
    for i, row in enumerate(packed.rows):
        group, correct = _group(row, where)
        groups.setdefault(group, []).append((correct, i))
    pairs = []
    for group, members in groups.items():
        pos = [i for ok, i in members if ok]
        neg = [i for ok, i in members if not ok]
        if len(pos) != 1 or len(neg) != 1:
            raise DataLayoutError(f"{where}: group {group!r} has {len(pos)} correct and {len(neg)} incorrect samples "
                                  f"({', '.join(packed.ids[i] for _, i in members)}); a pair is exactly one of each")
        p, n = pos[0], neg[0]
        meta: dict = {}
        rp, rn = packed.rows[p], packed.rows[n]
        for key in sorted((set(rp) | set(rn)) - _SAMPLE_FIELDS):
            if rp.get(key) == rn.get(key):
                meta[key] = rp.get(key)
            else:
                meta[f"{key}_positive"], meta[f"{key}_negative"] = rp.get(key), rn.get(key)
        meta.setdefault("pair_id", group)      # summarize(): a pair without pair_id is its own group
        pairs.append(Pair(id=group, positive=Utterance(key=packed.ids[p], units=tuple(packed.units[p])),
                          negative=Utterance(key=packed.ids[n], units=tuple(packed.units[n])), meta=meta))
    pairs.sort(key=lambda q: natural_key(q.id))
    return pairs


read_slm_scaling_shard.yields_units = True   # pre-tokenised: a run needs no tokenizer for it (slmeval/run_setup.py)
