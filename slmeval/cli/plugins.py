"""`slmeval tasks` and `slmeval plugins [KIND]`: what is registered, where it came from, what is broken."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from slmeval.cli.app import app, fail, make_console

# kind -> (module, registry attribute). Every plugin kind is a slmeval.plugins.Registry; add a line here
# when a new kind appears, and `slmeval plugins` lists it.
KINDS: dict[str, tuple[str, str]] = {
    "readers": ("slmeval.data", "READERS"),
    "metrics": ("slmeval.metrics.families", "METRIC_FAMILIES"),
    "tokenizers": ("slmeval.units.spec", "TOKENIZERS"),
    "tokenizer-presets": ("slmeval.units.presets", "PRESETS"),
    "exports": ("slmeval.exports.base", "EXPORTS"),
    "models": ("slmeval.models.base", "ADAPTERS"),
    "protocols": ("slmeval.scoring.protocol", "PROTOCOLS"),
}


def _summary(kind: str, entry) -> str:
    if kind == "protocols" and entry.error is None:   # a preset is data: show its settings
        p = entry.obj
        return (f"score={p.score}, start={p.start_token}, score_eos={p.score_eos}, tie={p.tie_value}, "
                f"logprob_dtype={getattr(p, 'logprob_dtype', 'float32')}")
    if kind == "tokenizer-presets" and entry.error is None:   # data too: what it pins
        return f"{entry.obj.description} — {entry.obj.pins()}"
    return entry.summary


def registry_for(kind: str):
    module, attr = KINDS[kind]
    return getattr(importlib.import_module(module), attr)


@app.command("plugins")
def list_plugins(kind: Optional[str] = typer.Argument(None, help=f"One of: tasks, {', '.join(KINDS)}.")) -> None:
    """List registered plugins (readers, metric families, tokenizers, exports, ...) and where each came from."""
    if kind == "tasks":
        list_tasks(None)
        return
    if kind is not None and kind not in KINDS:
        fail(f"unknown plugin kind {kind!r}; expected one of: tasks, {', '.join(KINDS)}")
    table = Table(title="registered plugins" if kind is None else f"registered {kind}", title_justify="left")
    for col in ("kind", "name", "from", "what"):
        table.add_column(col, overflow="fold")
    broken = 0
    for name in [kind] if kind else list(KINDS):
        registry = registry_for(name)
        for entry in registry.entries():
            broken += entry.error is not None
            style = "red" if entry.error is not None else ""
            table.add_row(name, escape(entry.name), escape(entry.origin), escape(_summary(name, entry)), style=style)
        table.add_section()
    console = make_console()
    console.print(table)
    console.print("Other packages add plugins through entry points: "
                  + ", ".join(f"{k} → {registry_for(k).group}" for k in (kind and [kind] or KINDS))
                  + ", tasks → slmeval.tasks (docs/plugins.md).")
    if broken:
        console.print(f"[red]{broken} plugin(s) could not be loaded; the reason is in their row.[/]")


def _origin(cfg, builtin: Path) -> str:
    path = Path(cfg.origin)     # built-ins live in a folder per benchmark: "built-in (sblimp/sblimp.yaml)"
    return f"built-in ({path.relative_to(builtin).as_posix()})" if path.is_relative_to(builtin) else cfg.origin


@app.command("tasks")
def list_tasks(include_path: Optional[list[Path]] = typer.Option(None, "--include-path", "--include_path",
                                                                  help="Extra folder of task files.")) -> None:
    """List registered tasks: the data layout each expects and how to get it, where each came from, and
    broken task files. Bundled mini tasks (toy data, docs/demo.md) are marked [mini]."""
    from slmeval.data import READERS
    from slmeval.metrics.families import METRIC_FAMILIES
    from slmeval.task_loader.registry import TaskError, builtin_task_dir, load_registry

    try:
        registry = load_registry(include_path)
        builtin = builtin_task_dir()
    except TaskError as err:
        fail(str(err))
    table = Table(title=escape("registered tasks ([mini]: bundled toy data, numbers not comparable with the benchmarks)"),
                  title_justify="left")
    for col in ("task", "metrics", "data expected at", "how to get the data", "from", "description"):
        table.add_column(col, overflow="fold")
    layouts = {e.name: e.summary for e in READERS.entries()}
    for name, cfg in sorted(registry.tasks.items()):
        try:
            where = str(cfg.locate(None)[0])
        except TaskError:
            where = f"<data-root>/{cfg.path}"
        layout = layouts.get(cfg.source, cfg.source)
        family = cfg.family if cfg.family in METRIC_FAMILIES else f"[red]{cfg.family} (no such metric family)[/]"
        table.add_row(escape(name + ("\n[mini]" if cfg.mini else "")), family + f"\nheadline {cfg.headline}",
                      escape(f"{where}\n{layout}"), escape(cfg.how_to_get or f"see {cfg.origin}"),
                      escape(_origin(cfg, builtin)), escape(cfg.description))
    console = make_console()
    console.print(table)
    for b in registry.broken:
        console.print(f"[red]broken:[/] {escape(b.reason)}")
