"""Rebuild everything in audio_assets/: the mini tasks, the demo tokenizer and the demo model.

    python -m slmeval.demo.build_assets                  # all three, in order
    python -m slmeval.demo.build_assets --only tasks     # or tokenizer / model

The training corpus (espeak-ng speech of `slmeval.demo.items.training_texts`, never task text) is
synthesised once into a work folder (default .cache/demo_build/) and reused while its text list is
unchanged. Everything is seeded; on the same espeak-ng version the audio is identical.
"""
from __future__ import annotations

import argparse
import csv
import io
import itertools
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from slmeval.demo import items, layout
from slmeval.demo.speech import speak_to_files
from slmeval.io import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
ASSETS = REPO_ROOT / "audio_assets"
WORK = REPO_ROOT / ".cache" / "demo_build"
TOKENIZER_K = 100
TOKENIZER_SEED = 0
TOKENIZER_FIT_FILES = 2000        # first files of the (shuffled) training corpus


_write_text_atomic = atomic_write_text   # one atomic writer for the whole project (slmeval.results.files)


def table_text(rows: list[list[str]], header: list[str], delimiter: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def item_list_files() -> dict[str, str]:
    """Every item list, relative to audio_assets/ -> its exact text (what the reproducibility test checks)."""
    files = {"mini_sblimp/syntactic/dev/gold.csv": table_text(layout.sblimp_gold_rows(), layout.GOLD_HEADER, ",")}
    for task in ("mini_sstorycloze", "mini_tstorycloze", "mini_ms_sstorycloze"):
        files[f"items/{task}.tsv"] = table_text(layout.story_rows(task), layout.STORY_HEADER, "\t")
    return files


def build_tasks(out: Path, *, progress: bool = True) -> None:
    """Delete and re-synthesise the four mini-task folders and their item lists."""
    for folder in list(layout.TASK_DIRS.values()) + ["items"]:
        shutil.rmtree(out / folder, ignore_errors=True)
    jobs = layout.audio_jobs()
    seconds = speak_to_files([(j.text, j.voice, out / j.relpath) for j in jobs], progress=progress,
                             label="mini tasks")
    for rel, text in item_list_files().items():
        _write_text_atomic(out / rel, text)
    log.info("mini tasks: %d files, %.0f s of audio", len(jobs), seconds)


def synthesise_corpus(work: Path, *, corpus: list[items.Utterance] | None = None,
                      progress: bool = True) -> list[Path]:
    """Training audio in `work/corpus/`; reused when `work/corpus.tsv` lists the same texts and voices."""
    corpus = items.training_texts() if corpus is None else corpus
    items.check_disjoint(corpus)
    listing = "".join(f"{i:05d}\t{u.voice}\t{u.text}\n" for i, u in enumerate(corpus))
    files = [work / "corpus" / f"{i:05d}.flac" for i in range(len(corpus))]
    tsv = work / "corpus.tsv"
    if tsv.is_file() and tsv.read_text() == listing and all(f.is_file() for f in files):
        return files
    shutil.rmtree(work / "corpus", ignore_errors=True)
    seconds = speak_to_files([(u.text, u.voice, f) for u, f in zip(corpus, files)], progress=progress,
                             label="training corpus")
    _write_text_atomic(tsv, listing)
    log.info("training corpus: %d utterances, %.0f s of audio", len(files), seconds)
    return files


def build_tokenizer(out: Path, corpus_files: list[Path], *, progress: bool = True) -> Path:
    from slmeval.units import fit_logmel_kmeans

    return fit_logmel_kmeans(corpus_files[:TOKENIZER_FIT_FILES], k=TOKENIZER_K, out_dir=out / "demo_tokenizer",
                             seed=TOKENIZER_SEED, progress=progress)


def encode_corpus(tokenizer_dir: Path, corpus_files: list[Path], work: Path, *,
                  progress: bool = True) -> list[np.ndarray]:
    """Units of every corpus file (deduplicated, as the tokenizer outputs), cached per tokenizer identity."""
    from rich.progress import Progress

    from slmeval.audio import load_audio
    from slmeval.units import load_tokenizer
    from slmeval.units.base import identity_key

    tok = load_tokenizer(str(tokenizer_dir))
    cache = work / f"units_{identity_key(tok.identity)[:16]}_{len(corpus_files)}.npz"
    if cache.is_file():
        with np.load(cache) as data:
            flat, starts = data["units"], data["starts"]
        return [flat[a:b] for a, b in itertools.pairwise(starts)]
    seqs = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("encoding corpus", total=len(corpus_files))
        for f in corpus_files:
            seqs.append(tok.encode(load_audio(f)))
            bar.advance(task)
    starts = np.cumsum([0] + [len(s) for s in seqs])
    with atomic_path(cache) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, units=np.concatenate(seqs), starts=starts)
    return seqs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m slmeval.demo.build_assets", description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["tasks", "tokenizer", "model"], help="rebuild one part only")
    parser.add_argument("--out", type=Path, default=ASSETS, help="assets folder (default: audio_assets/)")
    parser.add_argument("--work", type=Path, default=WORK, help="work folder for the training corpus")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # espeak-ng renders at 22,050 Hz: one "resampled" line per file would bury the build's own log.
    logging.getLogger("slmeval.audio").setLevel(logging.WARNING)
    progress = not args.quiet
    parts = [args.only] if args.only else ["tasks", "tokenizer", "model"]
    start = time.perf_counter()
    if "tasks" in parts:
        build_tasks(args.out, progress=progress)
    if "tokenizer" in parts or "model" in parts:
        corpus_files = synthesise_corpus(args.work, progress=progress)
        if "tokenizer" in parts:
            build_tokenizer(args.out, corpus_files, progress=progress)
        if "model" in parts:
            from slmeval.demo.train import train_demo_model

            units = encode_corpus(args.out / "demo_tokenizer", corpus_files, args.work, progress=progress)
            train_demo_model(units, n_units=TOKENIZER_K, out_dir=args.out / "demo_model", progress=progress)
    log.info("done in %.0f s", time.perf_counter() - start)


if __name__ == "__main__":
    main()
