"""`slmeval text` (a text LM through lm-eval on the text twins) and `slmeval text-prepare`."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from slmeval.cli.app import app, fail, make_console

console = make_console()


def _print(results: dict) -> None:
    table = Table(title="slmeval text results (accuracy %, ± stderr)", title_justify="left")
    for col in ("task", "twin of", "metric", "value", "± stderr", "pairs"):
        table.add_column(col, justify="right" if col in ("value", "± stderr", "pairs") else "left")
    for task, metrics in results["results"].items():
        cfg = results["configs"][task]
        shown = [m for m in ("acc_macro", "acc", "acc_paradigm_mean") if m in metrics]
        for i, metric in enumerate(shown):
            se = metrics.get(f"{metric}_stderr")
            table.add_row(task if i == 0 else "", (cfg.get("twin") or "–") if i == 0 else "",
                          f"[bold]{metric}[/]" if metric == cfg.get("headline") else metric,
                          f"{100 * metrics[metric]:.2f}",
                          f"{100 * se:.2f}" if isinstance(se, float) and math.isfinite(se) else "–",
                          str(metrics["n_pairs"]) if i == 0 else "")
    console.print(table)
    if results["config"].get("limit") is not None:
        console.print(f"[yellow]partial run:[/] --limit {results['config']['limit']} items per lm-eval task "
                      "(the leaderboard refuses partial runs)")


@app.command("text")
def text_command(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="HF causal LM: a Hub id or a local folder "
                                        "(lm-eval's pretrained=)."),
    tasks: str = typer.Option("text_blimp,text_storycloze,text_tstorycloze", "--tasks", "-t",
                              help="Comma-separated lm-eval task or group names (slmeval's twins, or any lm-eval task)."),
    model_args: Optional[str] = typer.Option(None, "--model-args", "--model_args", help="lm-eval HF model args, e.g. "
                                             "pretrained=EleutherAI/pythia-160m,revision=step3000,dtype=bfloat16."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Folder holding blimp/, storycloze/, "
                                             "tstorycloze/ (offline); without it tasks read their Hub copy."),
    include_path: Optional[list[Path]] = typer.Option(None, "--include-path", "--include_path",
                                                      help="Extra folder of lm-eval task YAMLs."),
    limit: Optional[int] = typer.Option(None, "--limit", help="First N items of every lm-eval task (a partial "
                                        "run, marked as such)."),
    batch_size: str = typer.Option("8", "--batch-size", "--batch_size", "-b", help="Batch size, or 'auto'."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float32 | bfloat16 | float16 (lm-eval dtype=)."),
    output: Optional[Path] = typer.Option(None, "--output", "--output_path", "-o", help="Folder for lm-eval's files and slmeval's "
                                          "results.json + samples."),
    seed: int = typer.Option(0, "--seed", help="lm-eval's random / numpy / torch seeds."),
) -> None:
    """Score a text LM on the text twins of the speech tasks through lm-eval (lm_eval.simple_evaluate)."""
    from transformers.utils import logging as hf_logging

    from slmeval.text.convert import ConversionError
    from slmeval.text.data import TextTaskError
    from slmeval.text.runner import TextRunError, evaluate_text

    hf_logging.disable_progress_bar()
    size: int | str = int(batch_size) if batch_size.isdigit() else batch_size
    try:
        results = evaluate_text(model, [t.strip() for t in tasks.split(",")], model_args=model_args,
                                data_root=data_root, include_path=include_path, limit=limit, batch_size=size,
                                device=device, dtype=dtype, output=output, seed=seed)
    except (TextRunError, TextTaskError, ConversionError, ValueError, FileNotFoundError) as err:
        fail(err)
    _print(results)
    if output:
        lm = results["config"]["lm_eval"]
        console.print(f"results written to {output / 'results.json'} (lm-eval's own: {output / lm['results_file']})")


@app.command("text-prepare")
def text_prepare(
    benchmark: str = typer.Argument(..., help="storycloze (writes the storycloze/ and tstorycloze/ folders)."),
    source: Path = typer.Option(..., "--source", help="The StoryCloze Spring-2016 test CSV (release columns) "
                                "or a CSV / JSON / JSONL in lm-eval's storycloze column names."),
    data_root: Path = typer.Option(..., "--data-root", help="Folder to write into (then pass it to `slmeval text`)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the topic-StoryCloze wrong-ending draw."),
) -> None:
    """Build the text twins' data files (see docs/text.md)."""
    from slmeval.text.data import TextTaskError
    from slmeval.text.prepare import prepare_storycloze

    if benchmark != "storycloze":
        fail(f"unknown benchmark {benchmark!r}; expected 'storycloze' "
             "(BLiMP needs no preparation: copy the release's data/*.jsonl to DATA_ROOT/blimp/)")
    try:
        written = prepare_storycloze(source, data_root, seed=seed)
    except (TextTaskError, ValueError, OSError) as err:
        fail(err)
    for name, path in written.items():
        console.print(f"{name}: {path}")
