"""Builders that write each published task layout with real espeak-ng speech.

Every `make_*` writes into the given location and returns the pairs a correct reader must return,
in reader order (ids sorted with digit runs compared as numbers). They are written independently of
`slmeval.data`'s readers (only the `Pair`/`Utterance` contract is shared) so they can serve as the
reference in tests; the end-to-end tests reuse them to build small tasks.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from slmeval.audio import TARGET_SR, write_audio
from slmeval.data.base import Pair, Utterance
from slmeval.tts.espeak import synthesize

VOICES = ("en-us", "en-gb+f3")
# (grammatical, ungrammatical) sentence pairs: short, so synthesis stays a few milliseconds each.
SENTENCES = (("the cat sleeps", "the cat sleep"), ("she saw herself", "she saw himself"))
# sBLIMP phenomena the two sentence pairs stand for: (type, subtype)
SBLIMP_TYPES = (("subject_verb_agreement", "regular_plural_subject_verb_agreement_1"),
                ("anaphor_agreement", "anaphor_gender_agreement"))

_SPEECH: dict[tuple[str, str], np.ndarray] = {}


def speech(text: str, voice: str) -> np.ndarray:
    """espeak-ng waveform (16 kHz float32), synthesised once per (text, voice) per test session."""
    if (text, voice) not in _SPEECH:
        _SPEECH[(text, voice)] = synthesize(text, voice)
    return _SPEECH[(text, voice)]


def encoded(text: str, voice: str, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, speech(text, voice), TARGET_SR, format=fmt, subtype="PCM_16")
    return buf.getvalue()


def _order(pairs: list[Pair]) -> list[Pair]:
    key = lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.id)]  # noqa: E731
    return sorted(pairs, key=key)


def _pair_texts(i: int) -> tuple[str, str]:
    return SENTENCES[i % len(SENTENCES)]


# --- sBLIMP (ZeroSpeech 2021) -------------------------------------------------------------------

# Column orders the official sLM21 scorers label right (they read each pair's labels by position:
# id and voice, then type, subtype, transcription / frequency, word, length), without extra columns.
SBLIMP_RELEASE_COLUMNS = ["filename", "id", "voice", "type", "subtype", "correct", "transcription"]
SWUGGY_RELEASE_COLUMNS = ["filename", "id", "voice", "frequency", "word", "phones", "length", "correct"]


def make_sblimp(root: Path, split: str = "dev", voices: tuple[str, ...] = VOICES, ext: str = ".wav",
                items_per_type: int = 1, skip: frozenset = frozenset(), release_columns: bool = False) -> list[Pair]:
    """Write `<root>/syntactic/<split>/{<name><ext>, gold.csv}`: for each of the two sBLIMP types,
    `items_per_type` items, each spoken by every voice (a voice-pair = correct + incorrect file) except
    the (type, item, voice) triples in `skip` (unbalanced voices).
    gold.csv columns are deliberately NOT in an order the official scorer reads right (readers must go
    by header name), plus one extra column readers ignore; `release_columns`: SBLIMP_RELEASE_COLUMNS."""
    folder = Path(root) / "syntactic" / split
    folder.mkdir(parents=True, exist_ok=True)
    rows, pairs, n = [], [], 0
    for t, (typ, subtype) in enumerate(SBLIMP_TYPES):
        good, bad = SENTENCES[t]
        for item in range(1, items_per_type + 1):
            for voice in voices:
                if (typ, item, voice) in skip:
                    continue
                names = {}
                for correct, text in ((1, good), (0, bad)):
                    name = f"{split[0]}{n:05d}x"               # opaque names, like the release's
                    n += 1
                    write_audio(folder / f"{name}{ext}", speech(text, voice))
                    rows.append({"voice": voice, "id": str(item), "correct": correct, "filename": name,
                                 "subtype": subtype, "type": typ, "transcription": text, "extra": "x"})
                    names[correct] = name
                pairs.append(Pair(
                    id=f"{typ}/{subtype}/{item}/{voice}",
                    positive=Utterance(key=names[1], audio=folder / f"{names[1]}{ext}"),
                    negative=Utterance(key=names[0], audio=folder / f"{names[0]}{ext}"),
                    meta={"type": typ, "subtype": subtype, "item": str(item), "voice": voice,
                          "transcription_positive": good, "transcription_negative": bad}))
    rows.reverse()                                             # file order must not matter either
    with open(folder / "gold.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=SBLIMP_RELEASE_COLUMNS if release_columns else list(rows[0]),
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return _order(pairs)


# --- StoryCloze (slprl release) -----------------------------------------------------------------

STORIES = ("a1b2-c3", "story_two", "10")   # ids with a dash, an underscore, and digits only


def make_storycloze(root: Path, multispeaker: bool = False, voices: tuple[str, ...] = VOICES,
                    ext: str = ".wav") -> list[Pair]:
    """Write `<k>_<story>_correct<ext>` / `<k+1>_<story>_incorrect<ext>` for three stories into
    `root` (single speaker: voices[0]) or into `root/<voice>/` for every voice (multi-speaker)."""
    root = Path(root)
    speakers = list(voices) if multispeaker else [None]
    pairs = []
    for speaker in speakers:
        folder = root / speaker if speaker else root
        voice = speaker or voices[0]
        for i, story in enumerate(STORIES):
            good, bad = _pair_texts(i)
            pos, neg = f"{2 * i}_{story}_correct", f"{2 * i + 1}_{story}_incorrect"
            write_audio(folder / f"{pos}{ext}", speech(good, voice))
            write_audio(folder / f"{neg}{ext}", speech(bad, voice))
            pairs.append(Pair(id=f"{speaker}/{story}" if speaker else story,
                              positive=Utterance(key=pos, audio=folder / f"{pos}{ext}"),
                              negative=Utterance(key=neg, audio=folder / f"{neg}{ext}"),
                              meta={"story": story, "speaker": speaker}))
    return _order(pairs)


# --- slamkit-style paired folder ----------------------------------------------------------------

def make_paired(root: Path, sep: str = "_", n_pairs: int = 6, ext: str = ".wav") -> list[Pair]:
    """Write `<int><sep><rest><ext>`, files 2i positive and 2i+1 negative. Six pairs = twelve
    files, so numeric order (2 < 10) and text order differ."""
    root = Path(root)
    pairs = []
    for i in range(n_pairs):
        good, bad = _pair_texts(i)
        voice = VOICES[i % len(VOICES)]
        pos, neg = f"{2 * i}{sep}{good.replace(' ', '-')}", f"{2 * i + 1}{sep}{bad.replace(' ', '-')}"
        write_audio(root / f"{pos}{ext}", speech(good, voice))
        write_audio(root / f"{neg}{ext}", speech(bad, voice))
        pairs.append(Pair(id=str(2 * i), positive=Utterance(key=pos, audio=root / f"{pos}{ext}"),
                          negative=Utterance(key=neg, audio=root / f"{neg}{ext}"),
                          meta={"positive_name": good.replace(" ", "-"), "negative_name": bad.replace(" ", "-")}))
    return pairs


# --- Hugging Face datasets on disk --------------------------------------------------------------

def _hf_columns(n_pairs: int, with_id: bool, fmt: str) -> tuple[dict, list[Pair]]:
    cols: dict[str, list] = {"id": [], "positive": [], "negative": [], "text": [], "n_words": []}
    pairs = []
    for i in range(n_pairs):
        good, bad = _pair_texts(i)
        voice = VOICES[i % len(VOICES)]
        pid = f"item{i}" if with_id else str(i)
        pb, nb = encoded(good, voice, fmt), encoded(bad, voice, fmt)
        cols["id"].append(pid)
        cols["positive"].append({"bytes": pb, "path": f"{pid}_pos.{fmt.lower()}"})
        cols["negative"].append({"bytes": nb, "path": f"{pid}_neg.{fmt.lower()}"})
        cols["text"].append(good)
        cols["n_words"].append(len(good.split()))
        meta = {"text": good, "n_words": len(good.split())}
        pairs.append(Pair(id=pid, positive=Utterance(key=f"{pid}/positive", audio=pb),
                          negative=Utterance(key=f"{pid}/negative", audio=nb), meta=meta))
    if not with_id:
        del cols["id"]
    return cols, _order(pairs)


def _datasets_dataset(cols: dict):
    from datasets import Audio, Dataset   # test-only peer producer
    ds = Dataset.from_dict(cols)
    for name in ("positive", "negative"):
        ds = ds.cast_column(name, Audio(decode=False))
    return ds


def _pyarrow_table(cols: dict):
    """The schema `datasets` writes for Audio(decode=False), built by hand."""
    import pyarrow as pa
    audio = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return pa.table({k: pa.array(v, type=audio if k in ("positive", "negative") else None)
                     for k, v in cols.items()})


def make_hf_parquet(path: Path, producer: str = "pyarrow", n_pairs: int = 4, with_id: bool = True,
                    fmt: str = "WAV") -> list[Pair]:
    """Write one parquet file with `positive`/`negative` audio structs {bytes, path}, an `id` column
    (unless `with_id=False`: ids are then row numbers) and two scalar columns (`text`, `n_words`).
    `producer`: "pyarrow" (the schema by hand) or "datasets" (Dataset.to_parquet, the peer tool;
    needs the `datasets` package from the test extra)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols, pairs = _hf_columns(n_pairs, with_id, fmt)
    if producer == "datasets":
        _datasets_dataset(cols).to_parquet(str(path))
    else:
        import pyarrow.parquet as pq
        pq.write_table(_pyarrow_table(cols), path)
    return pairs


def make_hf_arrow(folder: Path, producer: str = "pyarrow", n_pairs: int = 4, with_id: bool = True,
                  num_shards: int = 1, fmt: str = "WAV") -> list[Pair]:
    """Write a `save_to_disk` folder (dataset_info.json, state.json, data-*.arrow stream files)."""
    folder = Path(folder)
    cols, pairs = _hf_columns(n_pairs, with_id, fmt)
    if producer == "datasets":
        _datasets_dataset(cols).save_to_disk(str(folder), num_shards=num_shards)
        return pairs
    import pyarrow as pa
    folder.mkdir(parents=True, exist_ok=True)
    table = _pyarrow_table(cols)
    bounds = np.linspace(0, table.num_rows, num_shards + 1).astype(int)
    names = []
    for s in range(num_shards):
        name = f"data-{s:05d}-of-{num_shards:05d}.arrow"
        with pa.OSFile(str(folder / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table.slice(bounds[s], bounds[s + 1] - bounds[s]))
        names.append({"filename": name})
    (folder / "state.json").write_text(json.dumps({"_data_files": names, "_split": None}))
    (folder / "dataset_info.json").write_text(json.dumps({"features": {}}))
    return pairs


# --- pre-tokenised units ------------------------------------------------------------------------

def make_units_jsonl(path: Path, n_pairs: int = 12, n_units: int = 50, seed: int = 0) -> list[Pair]:
    """Write `{"id", "positive", "negative", "source"}` lines (random units, lengths 3..9) in
    shuffled order; ids 0..n-1 as integers."""
    rng = np.random.default_rng(seed)
    pairs, lines = [], []
    for i in rng.permutation(n_pairs):
        pos = rng.integers(0, n_units, rng.integers(3, 10)).tolist()
        neg = rng.integers(0, n_units, rng.integers(3, 10)).tolist()
        lines.append(json.dumps({"id": int(i), "positive": pos, "negative": neg, "source": f"s{i % 3}"}))
        pairs.append(Pair(id=str(i), positive=Utterance(key=f"{i}/positive", units=tuple(pos)),
                          negative=Utterance(key=f"{i}/negative", units=tuple(neg)),
                          meta={"source": f"s{i % 3}"}))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")
    return _order(pairs)


# --- sWUGGY (ZeroSpeech 2021 lexical) -----------------------------------------------------------

# (word, non-word, its phones, LibriSpeech count): one word per official frequency band, and a word
# with no count. Non-words get an empty `word` field, as in the release.
SWUGGY_ITEMS = (("water", "wobter", "w oh b t er", 150), ("garden", "gorden", "g ao r d ah n", 42),
                ("window", "wendow", "w eh n d ow", 7), ("table", "tible", "t ay b ah l", 3),
                ("marble", "morble", "m ao r b ah l", 0), ("candle", "kendle", "k eh n d ah l", None))
SWUGGY_COLUMNS = ("id", "voice", "correct", "filename", "frequency", "length", "phones", "word", "extra")


def swuggy_band(frequency: int | None) -> str | None:
    """The official bands written out by hand from lexical.py's pandas.cut edges [0,1,5,20,100,inf)."""
    if frequency is None:
        return None
    if frequency == 0:
        return "oov"
    if frequency <= 4:
        return "1-5"
    if frequency <= 19:
        return "6-20"
    if frequency <= 99:
        return "21-100"
    return ">100"


def make_swuggy(root: Path, split: str = "dev", voices: tuple[str, ...] = VOICES,
                skip: frozenset = frozenset(), release_columns: bool = False) -> list[Pair]:
    """Write `<root>/lexical/<split>/{<name>.wav, gold.csv}`: every SWUGGY_ITEMS word and its non-word
    said by every voice, except the (item id, voice) pairs in `skip` (unbalanced voices). Columns in
    an order of our own plus an extra one (readers go by header name; `release_columns`:
    SWUGGY_RELEASE_COLUMNS); rows shuffled."""
    folder = Path(root) / "lexical" / split
    folder.mkdir(parents=True, exist_ok=True)
    rows, pairs, n = [], [], 0
    for k, (word, nonword, phones, freq) in enumerate(SWUGGY_ITEMS):
        item = str(k + 1)
        for voice in voices:
            if (item, voice) in skip:
                continue
            names = {}
            for correct, text in ((1, word), (0, nonword)):
                name = f"{split[0]}{n:04d}w"
                n += 1
                write_audio(folder / f"{name}.wav", speech(text, voice))
                rows.append({"id": item, "voice": voice, "correct": correct, "filename": name,
                             "frequency": "" if freq is None else freq, "length": len(phones.split()),
                             "phones": phones if correct == 0 else " ".join(word), "word": word if correct else "",
                             "extra": "x"})
                names[correct] = name
            pairs.append(Pair(id=f"{item}/{voice}",
                              positive=Utterance(key=names[1], audio=folder / f"{names[1]}.wav"),
                              negative=Utterance(key=names[0], audio=folder / f"{names[0]}.wav"),
                              meta={"item": item, "voice": voice, "word": word, "nonword": phones,
                                    "frequency": freq, "frequency_band": swuggy_band(freq),
                                    "length": len(phones.split())}))
    order = np.random.default_rng(3).permutation(len(rows))
    with open(folder / "gold.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=SWUGGY_RELEASE_COLUMNS if release_columns else list(SWUGGY_COLUMNS),
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows[i] for i in order)
    return _order(pairs)


def make_swuggy_slamkit(root: Path, folders: tuple[str, ...] = VOICES) -> list[Pair]:
    """slamkit's sWUGGY layout (metric config `subfolder: true`, sep "_"): `<root>/<folder>/<int>_<text>.wav`,
    files 2i the word and 2i+1 its non-word; one folder per voice here. Pairs in folder-name order."""
    pairs = []
    for folder_name in sorted(folders):
        folder = Path(root) / folder_name
        for k, (word, nonword, _, _) in enumerate(SWUGGY_ITEMS):
            pos, neg = f"{2 * k}_{word}", f"{2 * k + 1}_{nonword}"
            write_audio(folder / f"{pos}.wav", speech(word, folder_name))
            write_audio(folder / f"{neg}.wav", speech(nonword, folder_name))
            pairs.append(Pair(id=f"{folder_name}/{2 * k}",
                              positive=Utterance(key=f"{folder_name}/{pos}", audio=folder / f"{pos}.wav"),
                              negative=Utterance(key=f"{folder_name}/{neg}", audio=folder / f"{neg}.wav"),
                              meta={"folder": folder_name, "positive_name": word, "negative_name": nonword}))
    return pairs


# --- SALMon -------------------------------------------------------------------------------------

SALMON_TEXTS = (("the cat sleeps", "on the mat"), ("she saw herself", "in the mirror"))


def make_salmon(root: Path, parts: tuple[str, ...], n_samples: int = 2, extra_option: bool = False) -> list[Pair]:
    """`<root>/<part>/sample_<i>_0.wav` (one voice throughout) and `sample_<i>_1.wav` (the voice changes
    half-way: speaker_consistency's construction), plus a metadata.json per part as the release has.
    `extra_option`: also a third file `sample_<i>_2.wav` (the generators' --n_options 3)."""
    pairs = []
    for part in parts:
        folder = Path(root) / part
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_samples):
            first, second = SALMON_TEXTS[i % len(SALMON_TEXTS)]
            start = speech(first, VOICES[0])
            consistent = np.concatenate([start, speech(second, VOICES[0])])
            switched = np.concatenate([start, speech(second, VOICES[1])])
            write_audio(folder / f"sample_{i}_0.wav", consistent)
            write_audio(folder / f"sample_{i}_1.wav", switched)
            if extra_option:
                write_audio(folder / f"sample_{i}_2.wav", switched[::-1].copy())
            pairs.append(Pair(id=f"{part}/{i}",
                              positive=Utterance(key=f"{part}/sample_{i}_0", audio=folder / f"sample_{i}_0.wav"),
                              negative=Utterance(key=f"{part}/sample_{i}_1", audio=folder / f"sample_{i}_1.wav"),
                              meta={"part": part, "sample": i}))
        (folder / "metadata.json").write_text(json.dumps([{"index": i} for i in range(n_samples)]))
    return pairs


# --- the Hub layouts (written with tarfile / pyarrow, independently of slmeval's readers) -------------

def to_webdataset(split_dir: Path, out: Path, n_shards: int = 2, ext: str = ".wav") -> dict[str, bytes]:
    """A ZeroSpeech split folder (gold.csv + audio) as the Hub's WebDataset layout: `out/gold.csv` and
    `out/audio/dev-00000N.tar`, members `<filename><ext>` dealt round-robin over the shards. Returns
    {path in repo: bytes} for the stand-in Hub."""
    import tarfile

    files = sorted(p for p in Path(split_dir).iterdir() if p.suffix == ext)
    shards: list[list[Path]] = [files[i::n_shards] for i in range(n_shards)]
    out = Path(out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    repo = {"gold.csv": (Path(split_dir) / "gold.csv").read_bytes()}
    for i, members in enumerate(shards):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for f in members:
                data = f.read_bytes()
                info = tarfile.TarInfo(f.name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        repo[f"audio/dev-{i:06d}.tar"] = buf.getvalue()
    for path, data in repo.items():
        (out / path).write_bytes(data)
    return repo


def pairs_to_parquet(pairs: list[Pair], positive: str = "positive", negative: str = "negative") -> bytes:
    """Parquet bytes with audio struct columns {bytes, path} (datasets' Audio(decode=False) storage) holding
    each pair's file bytes, in pair order, and the pair id as `id`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    audio = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    cols = {"id": [p.id.replace("/", "_") for p in pairs]}
    for name, side in ((positive, "positive"), (negative, "negative")):
        cols[name] = pa.array([{"bytes": Path(getattr(p, side).audio).read_bytes(),
                                "path": Path(getattr(p, side).audio).name} for p in pairs], type=audio)
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf)
    return buf.getvalue()
