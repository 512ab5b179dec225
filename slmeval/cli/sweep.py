"""`slmeval sweep`: evaluate many checkpoints on the same tasks and write the runs table `slmeval fit` reads."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from slmeval.cli.app import app, make_console
from slmeval.cli.run import report_error
from slmeval.distributed import env_rank

console = make_console()


@app.command()
def sweep(
    models: str = typer.Option(..., "--models", help="A list file (one checkpoint per line, optional name=path, "
                               "# comments), or comma-separated folders / globs / Hub ids."),
    tasks: str = typer.Option(..., "--tasks", "-t", help="Comma-separated task names (see `slmeval tasks`)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder: <name>/results.json per checkpoint, runs.csv, "
                                "sweep.json."),
    metadata: Optional[Path] = typer.Option(None, "--metadata", help="Table with name and D (training tokens), "
                                            "and optionally U, epochs, modality, ...; copied into runs.csv."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="Tokenizer dir or 'kind:key=value,...'."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Folder holding the benchmark downloads."),
    protocol: str = typer.Option("slmeval", "--protocol", help="Scoring preset: slmeval | slamkit | cuervo."),
    protocol_args: Optional[str] = typer.Option(None, "--protocol-args", help="Override preset fields."),
    model_args: Optional[str] = typer.Option(None, "--model-args", "--model_args",
                                             help="Applied to every checkpoint."),
    batch_size: int = typer.Option(8, "--batch-size", "--batch_size", "-b", min=1),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, ... (torchrun: cuda = cuda:LOCAL_RANK)"),
    dtype: str = typer.Option("float32", "--dtype", help="float32 | bfloat16 | float16"),
    include_path: Optional[list[Path]] = typer.Option(None, "--include-path", "--include_path",
                                                      help="Extra folder of task files."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Unit cache (default $SLMEVAL_CACHE or "
                                             "~/.cache/slmeval)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Keep units for this sweep only (still computed once)."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Allow sklearn-pickle k-means files."),
    resume: bool = typer.Option(False, "--resume", help="Skip checkpoints already evaluated with the same model "
                                "files and settings; reuse finished tasks of unfinished ones."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Evaluate a list or glob of checkpoints (audio tokenised once) and write runs.csv for `slmeval fit`."""
    from transformers.utils import logging as hf_logging

    from slmeval.sweep import RUNS_TABLE, expand_models, run_sweep

    hf_logging.disable_progress_bar()
    try:
        checkpoints = expand_models(models)
        report = run_sweep(checkpoints, [t.strip() for t in tasks.split(",") if t.strip()], output=output,
                           tokenizer=tokenizer, metadata=metadata, data_root=data_root, include_path=include_path,
                           cache_dir=cache_dir, use_cache=not no_cache, model_args=model_args, device=device,
                           dtype=dtype, batch_size=batch_size, protocol=protocol, protocol_args=protocol_args,
                           allow_pickle=allow_pickle, resume=resume, progress=progress)
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
