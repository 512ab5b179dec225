"""`slmeval fit` (scaling laws from a runs table) and `slmeval loss` (test loss of a checkpoint)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from slmeval.cli.app import app, fail, make_console

console = make_console()


@app.command("fit")
def fit_command(
    runs: Path = typer.Argument(..., help="Runs table (CSV / JSONL / parquet) or a folder of results JSONs."),
    out: Path = typer.Option(..., "--out", help="Output folder: fit.json, report.md, figures (PNG + SVG)."),
    metadata: Optional[Path] = typer.Option(None, help="Metadata table (name, N, D, ...) joined to a results folder."),
    name_from: str = typer.Option("dir", help="Run name of a results file: 'dir', 'model' or a regex with one group."),
    delta: float = typer.Option(1e-3, help="Huber δ (1e-3 as Hoffmann et al.; 0.03 as the SLM paper)."),
    bootstrap: int = typer.Option(200, help="Bootstrap replicates over runs (0: no intervals)."),
    seed: int = typer.Option(0, help="Seed of every bootstrap."),
    ci: float = typer.Option(0.95, help="Confidence level of the intervals."),
    metric: Optional[list[str]] = typer.Option(None, help="Metric column(s) to analyse (default: all numeric extras)."),
    saturation: str = typer.Option("hinge", help="Saturation rule for metric vs loss: hinge | max-loss | none."),
    saturation_loss: Optional[float] = typer.Option(None, help="Loss threshold for --saturation max-loss."),
    compare: Optional[list[str]] = typer.Option(None, help="Efficiency ratio(s) 'fast/slow', e.g. text/speech."),
    target: Optional[list[float]] = typer.Option(None, help="Metric value(s) to extrapolate the compute for."),
    modality: Optional[list[str]] = typer.Option(None, help="Accept extra modality names."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the figures."),
) -> None:
    """Fit L(N, D), allocation, multi-epoch, γq, metric-vs-loss and mixed-modal laws to a runs table."""
    from slmeval.scaling.plots import make_figures
    from slmeval.io import atomic_write_text
    from slmeval.scaling.report import print_summary, render_markdown, write_fit_json
    from slmeval.scaling.study import FitOptions, run_study
    from slmeval.scaling.tables import RunsTableError, load_runs, loss_average
    from slmeval.io import check_output_path

    try:
        check_output_path(out, "--out", folder=True)      # before the fit: a file there would fail after it
        df = load_runs(runs, metadata=metadata, name_from=name_from, extra_modalities=tuple(modality or ()))
        opts = FitOptions(delta=delta, bootstrap=bootstrap, seed=seed, ci=ci, metrics=metric or None,
                          saturation=saturation, saturation_loss=saturation_loss, compare=list(compare or []),
                          targets=list(target or []))
        for pair in opts.compare:
            if pair.count("/") != 1:
                raise RunsTableError(f"--compare {pair!r}: expected 'fast/slow', e.g. text/speech")
        result = run_study(df, opts)
    except (RunsTableError, ValueError) as exc:
        fail(exc)
    result["input"] = {"runs": str(runs), "metadata": str(metadata) if metadata else None, "name_from": name_from,
                       "notes": list(df.attrs.get("notes", [])), "loss_average": loss_average(df)}
    if result["input"]["loss_average"]:
        console.print(f"loss fitted: {result['input']['loss_average']}", soft_wrap=True)
    for note in result["input"]["notes"]:
        console.print(Text.assemble(("note: ", "yellow"), note), soft_wrap=True)
    old_figures = _previous_figures(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        figures = [] if no_plots else make_figures(df, result, out)
        result["figures"] = figures
        write_fit_json(result, out / "fit.json")
        atomic_write_text(out / "report.md", render_markdown(result, figures))
        for name in sorted(set(old_figures) - set(figures)):   # a previous fit's figure must not pass for this one's
            (out / name).unlink(missing_ok=True)
    except OSError as exc:
        fail(f"--out {out}: cannot write ({exc.strerror or exc}): {exc.filename or out}")
    print_summary(result, console)
    console.print(f"wrote {out / 'fit.json'}, {out / 'report.md'} and {len(figures)} figure files")


def _previous_figures(out: Path) -> list[str]:
    """Figure files the fit already in `out` lists in its fit.json (plain file names only; never a path)."""
    import json

    from slmeval.io import SAFE_NAME

    try:
        names = json.loads((out / "fit.json").read_text(encoding="utf-8")).get("figures") or []
    except (OSError, ValueError, AttributeError):
        return []
    return [n for n in names if isinstance(n, str) and SAFE_NAME.fullmatch(n) and n.endswith((".png", ".svg"))]


@app.command("loss")
def loss_command(
    model: str = typer.Option(..., "--model", help="Checkpoint folder or Hub id (formats: docs/models.md)."),
    data: Path = typer.Option(..., "--data", help="Held-out set: a folder of audio, a units JSONL ({'units': [...]}) "
                                                  "or slm_scaling packed shard(s) (meta.json, audio.bin, audio.len)."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", "-t", help="Unit tokenizer for audio input."),
    model_args: Optional[str] = typer.Option(None, "--model-args", help="k=v,... (offset, bos_id, eos_id, max_length, ...)."),
    device: str = typer.Option("cpu", help="torch device."),
    dtype: str = typer.Option("float32", help="Model dtype."),
    batch_size: int = typer.Option(8, min=1, help="Windows per forward pass."),
    context_len: int = typer.Option(1, min=1, help="Least context per prediction in rolling windows (1 = lm-eval)."),
    score_eos: Optional[bool] = typer.Option(None, "--score-eos/--no-score-eos",
                                             help="Append EOS to every sequence and score it (default: the data's "
                                                  "own: a shard's stored EOS is scored, other data has none)."),
    average: str = typer.Option("token", help="The loss reported and appended: token (total NLL / units) or "
                                              "utterance (mean of per-utterance means; slm_scaling's mean_nll)."),
    per_utterance: Optional[Path] = typer.Option(None, "--per-utterance", help="Write each utterance's NLL here (JSONL)."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Do not check a shard's files against meta.json's sha256."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Unit cache (default $SLMEVAL_CACHE or ~/.cache/slmeval)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the unit cache."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Allow pickled k-means centroid files."),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the result as JSON here."),
    append_to: Optional[Path] = typer.Option(None, "--append-to", help="Append (name, N, D, loss, loss_average, modality) to this runs table."),
    name: Optional[str] = typer.Option(None, help="Run name for --append-to (default: the model folder name)."),
    tokens_seen: Optional[float] = typer.Option(None, "--tokens", help="D, training tokens seen (needed by --append-to)."),
    n_params: Optional[float] = typer.Option(None, "--n-params", help="N (default: the model's non-embedding parameters)."),
    modality: str = typer.Option("speech", help="Modality written with --append-to."),
) -> None:
    """Mean NLL per unit of a checkpoint on held-out data (rolling windows over long sequences)."""
    import json

    from slmeval.models import ModelError, load_lm
    from slmeval.scaling.loss import (AVERAGES, LossInputError, append_run, corpus_loss, load_held_out,
                                      non_embedding_params, write_per_utterance)
    from slmeval.io import atomic_write_text, check_output_path

    if append_to is not None and tokens_seen is None:
        fail("--append-to needs --tokens (D, the training tokens the checkpoint has seen)")
    if average not in AVERAGES:
        fail(f"--average {average!r}: expected one of {', '.join(AVERAGES)}")
    try:
        for path, option in ((output, "--output"), (append_to, "--append-to"), (per_utterance, "--per-utterance")):
            if path is not None:
                check_output_path(path, option, folder=False)
        tok = None
        if tokenizer is not None:   # K known before the model loads: checked against its vocabulary
            from slmeval.units import load_tokenizer

            tok = load_tokenizer(tokenizer, allow_pickle=allow_pickle, device=device)
        lm = load_lm(model, model_args=model_args, device=device, dtype=dtype, n_units=tok.n_units if tok else None)
        held = load_held_out(data, tokenizer=tok, cache_dir=cache_dir, use_cache=not no_cache,
                             allow_pickle=allow_pickle, verify_checksums=not no_verify)
        top = max((max(u, default=-1) for u in held.units), default=-1)
        if tok is None and top >= 0:    # pre-tokenised: the data's largest unit stands in for K (units on BOS/EOS/pad?)
            lm.check_units(top + 1, "the held-out data")
        for note in held.notes:
            console.print(Text.assemble(("note: ", "yellow"), note), soft_wrap=True)
        result = corpus_loss(lm, held.units, ids=held.ids, context_len=context_len, score_eos=held.score_eos(score_eos),
                             average=average, batch_size=batch_size)
    except (ModelError, LossInputError, ValueError, OSError) as exc:
        fail(exc)
    payload = {**result.to_dict(), "model": lm.describe(), "data": str(data),
               "non_embedding_params": non_embedding_params(lm.model), "notes": held.notes,
               "data_tokenizer": held.tokenizer}
    eos = {"all": "EOS scored", "none": "no EOS", "data": f"stored EOS scored on {result.n_eos_scored}"}[result.score_eos]
    console.print(f"loss {result.loss:.6f} nats/unit, {average}-weighted ({payload['bits_per_token']:.4f} bits) over "
                  f"{result.n_tokens} units, {result.n_sequences} sequences, {result.n_windows} windows ({eos})")
    console.print(f"  token-weighted {result.loss_token_weighted:.6f}  utterance-weighted "
                  f"{result.loss_utterance_weighted:.6f} (slm_scaling's mean_nll)")
    try:
        if per_utterance is not None:
            per_utterance.parent.mkdir(parents=True, exist_ok=True)
            write_per_utterance(per_utterance, result)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(output, json.dumps(payload, indent=2) + "\n")
    except OSError as exc:
        fail(exc)
    if append_to is not None:
        row = {"name": name or Path(model).name, "N": n_params or payload["non_embedding_params"],
               "D": tokens_seen, "loss": result.loss, "loss_average": average, "modality": modality,
               "loss_tokens": result.n_tokens}
        try:
            append_run(append_to, row)
        except (LossInputError, ValueError) as exc:
            fail(exc)
        console.print(f"appended {row['name']} to {append_to} (loss = {AVERAGES[average]})")
