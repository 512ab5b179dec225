"""`slmeval synth` (spoken benchmark variants from text), `slmeval synth-merge`, `slmeval speaker-gap`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from slmeval.cli.app import app, fail, make_console




@app.command()
def synth(
    source: Path = typer.Option(..., "--source", help="StoryCloze .csv, stories .jsonl {id,context,positive,negative}, "
                                "or minimal pairs .jsonl/.csv {id,type,subtype,good,bad} (sblimp)."),
    task: str = typer.Option(..., "--task", help="sstorycloze | tstorycloze | sblimp"),
    tts: str = typer.Option("espeak", "--tts", help="bark | espeak"),
    voices: str = typer.Option(..., "--voices", help="Comma-separated voices: espeak 'en-us,en-gb+f3', Bark "
                               "'v2/en_speaker_0,...' (or 'all' for every preset of --model)."),
    out: Path = typer.Option(..., "--out", help="Output folder (slprl layout, or ZeroSpeech for sblimp)."),
    shard: Optional[str] = typer.Option(None, "--shard", help="i/n (0-based): synthesise only this part of the work."),
    model: Optional[Path] = typer.Option(None, "--model", help="Bark: local suno/bark or suno/bark-small folder."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed (Bark); each call is seeded from (seed, voice, file)."),
    negatives_seed: int = typer.Option(0, "--negatives-seed", help="tstorycloze: seed drawing other stories' endings."),
    split: str = typer.Option("dev", "--split", help="sblimp: the syntactic/<split> folder name."),
    flat: bool = typer.Option(False, "--flat", help="StoryCloze with one voice: files directly in --out "
                              "(the single-speaker layout) instead of a voice sub-folder."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Texts per TTS call (default 8)."),
    device: str = typer.Option("cpu", "--device", help="Bark: cpu, cuda, cuda:1, ..."),
    dtype: str = typer.Option("float32", "--dtype", help="Bark: float32 | float16 | bfloat16"),
    semantic_temperature: float = typer.Option(0.7, "--semantic-temperature", help="Bark text→semantic sampling."),
    coarse_temperature: float = typer.Option(0.7, "--coarse-temperature", help="Bark coarse acoustics sampling."),
    fine_temperature: float = typer.Option(0.5, "--fine-temperature", help="Bark fine acoustics sampling."),
    semantic_max_new_tokens: Optional[int] = typer.Option(None, "--semantic-max-new-tokens",
                                                          help="Bark: cap on semantic tokens (~50 per second)."),
    split_sentences: bool = typer.Option(True, "--split-sentences/--whole-text",
                                         help="Bark: speak sentence by sentence (Bark stops at ~15 s per call)."),
    speed: Optional[int] = typer.Option(None, "--speed", help="espeak: words per minute."),
    pitch: Optional[int] = typer.Option(None, "--pitch", help="espeak: pitch 0-99."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Text in, spoken benchmark out (+ manifest.jsonl). Rerun to resume; --shard i/n splits the work."""
    import logging

    from slmeval.synth import SourceError, build_plan, parse_shard, run_synth
    from slmeval.tts.base import TTSError, make_backend
    from slmeval.tts.espeak import EspeakError

    # Every TTS output is resampled to 16 kHz by design; a log line per file would bury the progress bar.
    logging.getLogger("slmeval.audio").setLevel(logging.WARNING)
    from slmeval.distributed import check_device
    from slmeval.io import check_output_path

    try:
        check_output_path(out, "--out", folder=True)     # before any TTS work
        check_device(device)
        shard_ix = parse_shard(shard)
        if tts == "bark":
            options = {"dtype": dtype, "semantic_temperature": semantic_temperature,
                       "coarse_temperature": coarse_temperature, "fine_temperature": fine_temperature,
                       "semantic_max_new_tokens": semantic_max_new_tokens, "split_sentences": split_sentences}
        else:
            options = {"speed": speed, "pitch": pitch}
        backend = make_backend(tts, model=model, device=device, batch_size=batch_size, options=options)
        voice_list = [v.strip() for v in voices.split(",") if v.strip()]
        if voice_list == ["all"]:
            voice_list = backend.voices() or []
            if not voice_list:
                raise TTSError(f"--voices all: the {tts} backend cannot list its voices; name them")
        plan = build_plan(source, task, voice_list, negatives_seed=negatives_seed, split=split, flat=flat)
        report = run_synth(plan, backend, out, seed=seed, shard=shard_ix, progress=progress)
    except (SourceError, TTSError, EspeakError, OSError, ValueError) as err:   # ValueError: --out, --device
        fail(err)
    state = "complete; manifest merged" if report.complete else "this shard done; other shards pending"
    typer.echo(f"{out}: {report.written} written, {report.skipped} already done, {report.planned} in shard "
               f"{shard_ix[0]}/{shard_ix[1]} ({state}: {report.manifest})")


@app.command("synth-merge")
def synth_merge(out: Path = typer.Argument(..., help="An `slmeval synth` output folder.")) -> None:
    """Merge the manifest parts of a sharded synthesis into manifest.jsonl (the newest entry per file wins)."""
    from slmeval.synth import merge_manifest

    if not out.is_dir():
        fail(ValueError(f"{out}: not a directory"))
    n = merge_manifest(out)
    typer.echo(f"{out / 'manifest.jsonl'}: {n} entries")


@app.command("speaker-gap")
def speaker_gap_cmd(
    results_dir: Path = typer.Argument(..., help="A run folder (results.json) or a folder of run folders."),
    multi: str = typer.Option("ms_sstorycloze", "--multi", help="The multi-speaker task."),
    single: str = typer.Option("sstorycloze", "--single", help="The single-speaker task."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON rows instead of a table."),
) -> None:
    """Single-speaker acc vs multi-speaker mean, per-voice acc, spread, and the gap with a story-paired 95% CI."""

    from slmeval.synth.speaker_gap import SpeakerGapError, format_table, speaker_gap

    try:
        rows = speaker_gap(results_dir, multi=multi, single=single)
    except (SpeakerGapError, ValueError, FileNotFoundError) as err:
        fail(err)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        make_console().print(format_table(rows))
