"""`slmeval units ...`: fit log-mel k-means, convert pickled k-means files, encode a file to units, fetch a
tokenizer's files into the caches."""
from __future__ import annotations

from pathlib import Path

import typer

from slmeval.cli.app import app, fail

units_app = typer.Typer(help="Audio -> discrete units: fit / convert k-means centroids, encode files, fetch "
                        "a tokenizer's files.",
                        no_args_is_help=True)
app.add_typer(units_app, name="units")

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")




@units_app.command("fit-kmeans")
def fit_kmeans(
    audio_dir: Path = typer.Argument(..., help="Folder searched recursively for .wav / .flac / .ogg files."),
    k: int = typer.Option(100, "--k", min=2, help="Number of clusters (unit vocabulary size)."),
    out: Path = typer.Option(..., "--out", help="Output folder: centroids.npy + tokenizer.json."),
    n_mels: int = typer.Option(40, "--n-mels", min=1, help="Mel channels per frame."),
    normalize: bool = typer.Option(True, "--normalize/--no-normalize",
                                   help="Per-utterance mean/variance normalisation of the log-mel frames."),
    seed: int = typer.Option(0, "--seed", help="Seed for frame subsampling and k-means initialisation."),
    max_frames: int = typer.Option(200_000, "--max-frames", min=1, help="Frames used for fitting (random subset)."),
) -> None:
    """Fit k-means centroids on log-mel frames of a folder of audio (the `logmel` tokenizer)."""
    from slmeval.audio import AudioError
    from slmeval.io import OutputError, check_output_path
    from slmeval.units import TokenizerError, fit_logmel_kmeans

    try:
        check_output_path(out, "--out", folder=True)     # before the (long) fit
    except OutputError as err:
        fail(err)
    if not audio_dir.is_dir():
        fail(ValueError(f"{audio_dir}: not a directory"))
    files = sorted(p for p in audio_dir.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        fail(ValueError(f"{audio_dir}: no {'/'.join(AUDIO_SUFFIXES)} files found"))
    try:
        out_dir = fit_logmel_kmeans(files, k=k, out_dir=out, seed=seed, max_frames=max_frames,
                                    n_mels=n_mels, normalize=normalize)
    except (TokenizerError, AudioError) as err:
        fail(err)
    except OSError as err:
        fail(f"--out {out}: cannot write ({err.strerror or err}): {err.filename or out}")
    typer.echo(f"wrote {out_dir / 'centroids.npy'} and {out_dir / 'tokenizer.json'} "
               f"(k={k}, {len(files)} files); use --tokenizer {out_dir}")


@units_app.command("convert-kmeans")
def convert_kmeans(
    km_file: Path = typer.Argument(..., help="A pickled sklearn (MiniBatch)KMeans, e.g. TWIST's *_km500.bin."),
    out: Path = typer.Option(..., "--out", help="Where to write the (K, dim) centroids as .npy."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle",
                                      help="Required: unpickling executes code from the file; trust its source."),
) -> None:
    """Convert a pickled k-means model to a plain .npy centroid matrix (load it once, never again)."""
    from slmeval.io import OutputError, check_output_path
    from slmeval.units import TokenizerError, convert_kmeans_pickle, load_centroids

    try:
        check_output_path(out, "--out", folder=False)
    except OutputError as err:
        fail(err)
    if not allow_pickle:
        fail(ValueError(f"{km_file}: converting a pickle means unpickling it, which executes code stored in "
                         "the file. Re-run with --allow-pickle if you trust where it came from."))
    try:
        path = convert_kmeans_pickle(km_file, out)
        shape = load_centroids(path).shape
    except TokenizerError as err:
        fail(err)
    typer.echo(f"wrote {path}: {shape[0]} centroids x {shape[1]} dims")


@units_app.command("encode")
def encode(
    file: Path = typer.Argument(..., help="Audio file (any rate / channel count; converted to 16 kHz mono)."),
    tokenizer: str = typer.Option(..., "--tokenizer", "-t",
                                  help="Directory with tokenizer.json, or 'kind:key=value,...'."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Allow pickled k-means centroid files."),
    device: str = typer.Option("cpu", "--device", help="torch device for the hubert encoder."),
) -> None:
    """Print the units of one audio file, space-separated."""
    from slmeval.audio import AudioError, load_audio
    from slmeval.units import TokenizerError, load_tokenizer

    try:
        tok = load_tokenizer(tokenizer, allow_pickle=allow_pickle, device=device)
        wav = load_audio(file)
        units = tok.encode(wav)
    except (TokenizerError, AudioError, ValueError) as err:     # ValueError: --device this torch cannot use
        fail(err)
    typer.echo(" ".join(str(u) for u in units.tolist()))


@units_app.command("fetch")
def fetch(
    tokenizer: str = typer.Option(..., "--tokenizer", "-t",
                                  help="A preset (`slmeval plugins tokenizer-presets`) or a spec naming Hub ids."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Allow pickled k-means centroid files."),
) -> None:
    """Download and check a tokenizer's files into the caches (HuBERT: the Hugging Face cache; k-means file:
    $SLMEVAL_CACHE/downloads), so later runs need no network (HF_HUB_OFFLINE=1): a CI cache step or a
    cluster's login node fetches once."""
    from slmeval.units import TokenizerError, load_tokenizer

    try:
        tok = load_tokenizer(tokenizer, allow_pickle=allow_pickle, device="cpu")
    except TokenizerError as err:
        fail(err)
    source = getattr(tok, "source", None) or {}
    pins = "".join(f", {k}={v}" for k, v in source.items() if k != "preset")
    typer.echo(f"ready: {tokenizer} ({tok.n_units} units{pins})")
