"""`slmeval run` (listing tasks and plugins: slmeval/cli/plugins.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from slmeval.cli import options as opt
from slmeval.cli.app import app, make_console
from slmeval.distributed import env_rank

console = make_console()


def _fmt(value: object) -> str:
    return f"{100 * value:.2f}" if isinstance(value, float) else ("–" if value is None else str(value))


def print_results(results: dict) -> None:
    table = Table(title="slmeval results (acc* in %, ± stderr)", title_justify="left")
    for col in ("task", "metric", "value", "± stderr", "pairs"):
        table.add_column(col, justify="right" if col in ("value", "± stderr", "pairs") else "left")
    for task, metrics in results["results"].items():
        cfg = results["configs"][task]
        label = escape(f"{task} [mini]" if cfg.get("mini") else task)   # "[mini]" is text, not a style
        headline = cfg.get("headline", "acc")
        # acc* in %; a plugin family's own metrics (a margin, a correlation) as they are; counts (n_*) aside
        names = [m for m in metrics if not m.endswith("_stderr") and not m.startswith("n_")
                 and isinstance(metrics[m], (int, float))]
        for i, metric in enumerate(sorted(names, key=lambda m: (m != headline, not m.startswith("acc"), m))):
            value, stderr = metrics[metric], metrics.get(f"{metric}_stderr")
            if not metric.startswith("acc"):
                shown, shown_se = f"{value:.4g}", ("–" if stderr is None else f"{stderr:.4g}")
            else:
                shown = _fmt(value) if not metric.endswith(("_std",)) else f"{100 * value:.2f} (spread)"
                shown_se = _fmt(stderr)
            table.add_row(label if i == 0 else "", f"[bold]{metric}[/]" if metric == headline else metric, shown,
                          shown_se, str(metrics.get("n_pairs", "")) if i == 0 else "")
        for dim, groups in results.get("breakdowns", {}).get(task, {}).items():
            for group, row in groups.items():
                table.add_row("", f"  {dim}={group}", _fmt(row["acc"]), _fmt(row.get("acc_stderr")), str(row["n_pairs"]))
        table.add_section()
    console.print(table)
    proto = results["config"]["protocol"]
    for task, notes in results.get("warnings", {}).items():
        for note in notes:
            console.print(f"[yellow]warning[/] {task}: {note}")
    from slmeval.results.verify import task_ties

    # a task whose tie credit is not the protocol's (sBLIMP under cuervo: its task file's rule)
    ties = escape("".join(f", tie[{task}]={v}" for task, v in task_ties(results).items()
                          if v != proto.get("tie_value")))     # escaped: [task] is no rich markup
    dtype = f", logprob_dtype={proto['logprob_dtype']}" if proto.get("logprob_dtype", "float32") != "float32" else ""
    console.print(f"protocol [bold]{proto['name']}[/]: score={proto['score']}, start={proto['start_token']}, "
                  f"score_eos={proto['score_eos']}, tie={proto['tie_value']}{ties}{dtype}  ·  model sha256 "
                  f"{results['provenance']['model_sha256'][:12]}")
    from slmeval.run_setup import setup_lines

    for line in setup_lines(results):     # model, tokenizer, unit→token mapping, protocol: each with its source
        console.print(Text(line, style="yellow" if line.startswith("warning") else ""), soft_wrap=True)


def report_error(err: Exception) -> None:
    """One message per error, also under torchrun: rank 0 prints errors any rank shared with it."""
    from slmeval.distributed import DistributedError

    rank = env_rank()
    # Text, not markup: a message such as "task:b:positive" must not become an emoji or a style.
    if rank == 0:
        console.print(Text.assemble(("error: ", "red"), str(err)), soft_wrap=True)   # paths stay whole
    elif not isinstance(err, DistributedError) and not getattr(err, "reported_by_rank0", False):
        console.print(Text.assemble((f"error (rank {rank}): ", "red"), str(err)), soft_wrap=True)


@app.command()
def run(
    ctx: typer.Context,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Checkpoint directory or Hub id "
                                                 "(org/name\\[@revision]); formats: docs/models.md.")] = None,
    tasks: opt.Tasks = ...,
    data_root: opt.DataRoot = None,
    tokenizer: opt.Tokenizer = None,
    protocol: opt.ProtocolName = "slmeval",
    protocol_args: opt.ProtocolArgs = None,
    model_args: opt.ModelArgs = None,
    batch_size: opt.BatchSize = 8,
    device: opt.Device = "cpu",
    dtype: opt.Dtype = "float32",
    output: Annotated[Optional[Path], typer.Option("--output", "--output_path", "-o", help="Folder for results.json + "
                                                   "samples (without it nothing is written).")] = None,
    include_path: opt.IncludePath = None,
    cache_dir: opt.CacheDir = None,
    no_cache: opt.NoCache = False,
    logprob_backend: opt.LogprobBackend = "auto",
    export: opt.Export = None,
    allow_pickle: opt.AllowPickle = False,
    resume: opt.Resume = False,
    limit: opt.Limit = None,
    progress: opt.Progress = True,
    settings_file: opt.SettingsFile = None,
    log_samples: Annotated[bool, typer.Option(
        "--log_samples", "--log-samples", "-s", help="lm-eval's flag, accepted: slmeval always writes the samples.")] = False,
) -> None:
    """Score likelihood-pair tasks with a speech LM; print the table and write results."""
    from slmeval.evaluator import evaluate   # transformers' tqdm bars: off for every command (cli/app.py)

    if output is not None and output.suffix == ".json" and not output.is_dir():   # lm-eval's --output_path x.json
        report_error(ValueError(f"--output {output}: slmeval writes a folder (results.json + samples_<task>.jsonl); "
                                f"name the folder, e.g. --output {output.with_suffix('')}"))
        raise typer.Exit(2)
    try:
        settings = opt.settings_from_cli(ctx, settings_file, dict(
            data_root=data_root, tokenizer=tokenizer, protocol=protocol, protocol_args=protocol_args,
            model_args=model_args, batch_size=batch_size, device=device, dtype=dtype, output=output,
            include_path=include_path, cache_dir=cache_dir, use_cache=not no_cache, logprob_backend=logprob_backend,
            export=export, allow_pickle=allow_pickle, resume=resume, progress=progress, limit=limit))
        results = evaluate(model, [t.strip() for t in tasks.split(",") if t.strip()], settings)
    except (ValueError, OSError) as err:     # our errors: one clear message, no traceback
        report_error(err)
        raise typer.Exit(2) from None
    output, limit = settings.output, settings.limit      # as the file may have set them
    if env_rank() != 0:     # torchrun: rank 0 prints and writes
        return
    print_results(results)
    if limit is not None:
        console.print(f"[yellow]partial run:[/] --limit {limit} pairs per task (the leaderboard refuses partial runs)")
    if output:
        console.print(f"results written to {Path(output) / 'results.json'}")
    else:
        console.print("[yellow]nothing was written[/]: pass --output DIR to keep results.json and the "
                      "per-pair samples")
    if log_samples:   # lm-eval habit (docs/text.md: the lm-eval spellings slmeval accepts)
        console.print("--log_samples: slmeval always writes the samples (samples_<task>.jsonl beside "
                      "results.json in --output)")

