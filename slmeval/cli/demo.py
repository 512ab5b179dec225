"""`slmeval demo`: the main job on what slmeval ships (mini tasks, demo tokenizer, demo SLM); works the
same from a checkout and from an installed wheel."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from slmeval.cli.app import app, fail


@app.command()
def demo(
    output: Path = typer.Option(Path("out/demo"), "--output", "-o", help="Folder for results.json + samples."),
    tasks: Optional[str] = typer.Option(None, "--tasks", "-t", help="Comma-separated mini tasks (default: all bundled ones)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Unit cache (default $SLMEVAL_CACHE or ~/.cache/slmeval)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the unit cache."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Score the bundled demo SLM on the bundled mini tasks (no download, no checkpoint): docs/demo.md."""
    from slmeval.cli.run import console, print_results
    from slmeval.demo.bundled import assets_dir
    from slmeval.evaluator import evaluate
    from slmeval.task_loader.registry import all_tasks, builtin_task_dir

    try:
        assets = assets_dir()
        builtin = builtin_task_dir()
        minis = sorted(n for n, t in all_tasks().items() if t.mini and Path(t.origin).is_relative_to(builtin))
        chosen = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else minis
        others = [t for t in chosen if t not in minis]
        if others:
            raise ValueError(f"--tasks: {', '.join(others)}: the demo runs bundled mini tasks only "
                             f"({', '.join(minis)}); use `slmeval run` for others")
        results = evaluate(assets / "demo_model", chosen, tokenizer=str(assets / "demo_tokenizer"), output=output,
                           cache_dir=cache_dir, use_cache=not no_cache, progress=progress)
    except (ValueError, FileNotFoundError) as err:
        fail(err)
    print_results(results)
    console.print(f"results written to {output / 'results.json'} (mini tasks: not comparable with the benchmarks)")
