"""`slmeval sweep`: evaluate many checkpoints on the same tasks and write the runs table `slmeval fit` reads."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from slmeval.cli import options as opt
from slmeval.cli.app import app, make_console
from slmeval.cli.run import report_error
from slmeval.distributed import env_rank

console = make_console()


@app.command()
def sweep(
    ctx: typer.Context,
    models: Annotated[str, typer.Option("--models", help="A list file (one checkpoint per line, optional name=path, "
                                        "# comments), or comma-separated folders / globs / Hub ids.")],
    tasks: opt.Tasks,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder: <name>/results.json per checkpoint, runs.csv, "
                                         "sweep.json.")],
    metadata: Annotated[Optional[Path], typer.Option(
        "--metadata", help="Table with name and D (training tokens), and optionally U, epochs, modality, ...; "
        "copied into runs.csv.")] = None,
    tokenizer: opt.Tokenizer = None,
    data_root: opt.DataRoot = None,
    protocol: opt.ProtocolName = "slmeval",
    protocol_args: opt.ProtocolArgs = None,
    model_args: opt.ModelArgs = None,
    batch_size: opt.BatchSize = 8,
    device: opt.Device = "cpu",
    dtype: opt.Dtype = "float32",
    include_path: opt.IncludePath = None,
    cache_dir: opt.CacheDir = None,
    no_cache: opt.NoCache = False,
    allow_pickle: opt.AllowPickle = False,
    resume: opt.Resume = False,
    progress: opt.Progress = True,
    settings_file: opt.SettingsFile = None,
) -> None:
    """Evaluate a list or glob of checkpoints (audio tokenised once) and write runs.csv for `slmeval fit`."""
    from transformers.utils import logging as hf_logging

    from slmeval.sweep import RUNS_TABLE, expand_models, run_sweep

    hf_logging.disable_progress_bar()
    try:
        settings = opt.settings_from_cli(ctx, settings_file, dict(
            output=output, tokenizer=tokenizer, data_root=data_root, protocol=protocol, protocol_args=protocol_args,
            model_args=model_args, batch_size=batch_size, device=device, dtype=dtype, include_path=include_path,
            cache_dir=cache_dir, use_cache=not no_cache, allow_pickle=allow_pickle, resume=resume, progress=progress))
        checkpoints = expand_models(models)
        report = run_sweep(checkpoints, [t.strip() for t in tasks.split(",") if t.strip()], settings,
                           metadata=metadata)
    except (ValueError, OSError) as err:
        report_error(err)
        raise typer.Exit(2) from None
    if env_rank() != 0:
        # rank 0 reports and sets the exit status: a rank exiting 1 first makes torchrun stop rank 0 mid-report
        raise typer.Exit(0)
    table = Table(title=f"slmeval sweep: {len(report.rows)} of {len(checkpoints)} checkpoints", title_justify="left")
    metrics = sorted({k for row in report.rows for k in row if "/" in k and k.endswith("/acc")})
    for col in ("name", "N", "D", *metrics):
        table.add_column(col, justify="left" if col == "name" else "right")
    for row in report.rows:
        table.add_row(row["name"], f"{row['N']:.3g}", f"{row['D']:.3g}",
                      *(f"{100 * row[m]:.2f}" if m in row else "–" for m in metrics))
    console.print(table)
    console.print(f"runs table: {output / RUNS_TABLE}  (slmeval fit {output / RUNS_TABLE} --out FIT_DIR)")
    for failure in report.failures:
        console.print(f"[red]failed[/] {failure['name']} ({failure['model']}) at {failure['stage']}: ", end="")
        console.print(failure["error"], markup=False, emoji=False, soft_wrap=True)
    if report.failures:
        raise typer.Exit(1)
