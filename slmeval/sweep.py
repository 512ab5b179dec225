"""`slmeval sweep`: many checkpoints (a scaling suite) on the same tasks, in one command, into a runs table.

Each task's audio is tokenised once, before the first checkpoint (into the unit cache, or a temporary
one with --no-cache), so every checkpoint only reads units. Each checkpoint is one `evaluate` into
`<output>/<name>/`; with --resume a checkpoint whose results.json was made by the same model files and
settings is not evaluated again, and an unfinished one reuses its finished tasks (slmeval/results/resume.py):
the unit of work is (checkpoint, task). A checkpoint that fails to load or to evaluate is reported and
the sweep goes on; the CLI exits non-zero at the end.

The runs table (`<output>/runs.csv`) is what `slmeval fit` reads as is: name, N (non-embedding
parameters counted from the loaded model), D (training tokens: the metadata table, else the checkpoint
folder), any other metadata columns, and one column per metric, `<task>/<metric>`.
"""
from __future__ import annotations

import gc
import glob
import json
import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from slmeval.distributed import DistributedError, check_device, current_world, shard_sources, world_device
from slmeval.evaluator import check_families, evaluate, read_task
from slmeval.io import atomic_write_text, check_output_path, safe_name, write_json
from slmeval.models import LoadedLM, load_lm, parse_kv
from slmeval.task_loader.registry import get_tasks
from slmeval.scoring import get_protocol
from slmeval.results.files import RESULTS_FILE
from slmeval.settings import RunSettings, resolve_settings, sweep_identity
from slmeval.scaling.loss import non_embedding_params
from slmeval.scaling.results_folder import results_metrics
from slmeval.scaling.tables import canonical_columns, read_table

log = logging.getLogger(__name__)
RUNS_TABLE, MANIFEST = "runs.csv", "sweep.json"
# Where a checkpoint folder may say how many tokens it was trained on, in the order they are tried.
TOKEN_SOURCES = (("trainer_state.json", "num_input_tokens_seen"),   # transformers Trainer
                 ("training.json", "train_tokens"),                 # slmeval's demo model
                 ("config.json", "train_tokens"), ("config.json", "tokens_seen"))


class SweepError(ValueError):
    """Input that stops the whole sweep before any model work (bad list, missing D, bad metadata)."""


@dataclass(frozen=True)
class SweepEntry:
    """One line of `--models`: the run's folder name and the checkpoint (a folder or a Hub id)."""
    name: str
    model: str      # a folder or a Hub id


# The name before issue 24 (it clashed with slmeval.models.base.Checkpoint, the adapter's view of a folder).
Checkpoint = SweepEntry


@dataclass
class SweepReport:
    rows: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)


def expand_models(spec: str | Path) -> list[SweepEntry]:
    """A list file (one entry per line, `#` comments, optional `name=` prefix) or comma-separated entries;
    an entry is a folder, a glob of folders, or a Hub id. Names are folder names and must be unique."""
    path = Path(spec).expanduser()
    if path.is_file():
        lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
        entries, where = [line for line in lines if line], str(path)
        base = path.parent
    else:
        entries, where, base = [e.strip() for e in str(spec).split(",") if e.strip()], "--models", Path.cwd()
    found: list[SweepEntry] = []
    for entry in entries:
        name, _, target = entry.rpartition("=") if "=" in entry else ("", "", entry)
        target_path = Path(target).expanduser()
        if not target_path.is_absolute() and path.is_file():
            target_path = base / target_path
        if glob.has_magic(target):
            matches = sorted(p for p in glob.glob(str(target_path)) if Path(p).is_dir())
            if not matches:
                raise SweepError(f"{where}: {target!r} matches no checkpoint folder")
            found += [SweepEntry(Path(m).name, m) for m in matches]
        elif target_path.is_dir():
            found.append(SweepEntry(name or target_path.name, str(target_path)))
        elif target.count("/") == 1 and not target.startswith((".", "/", "~")):
            found.append(SweepEntry(name or target.split("/")[1].split("@")[0], target))   # Hub id
        else:
            raise SweepError(f"{where}: {target!r} is not a checkpoint folder (nor a glob or an org/name Hub id)")
    if not found:
        raise SweepError(f"{where}: no checkpoints listed")
    seen: dict[str, str] = {}
    for ckpt in found:
        safe_name(ckpt.name, f"{where}: checkpoint name")
        if ckpt.name in seen:
            raise SweepError(f"{where}: two checkpoints are named {ckpt.name!r} ({seen[ckpt.name]} and "
                             f"{ckpt.model}); name them in a list file as name=path")
        seen[ckpt.name] = ckpt.model
    return found


def tokens_from_checkpoint(model: str) -> tuple[float, str] | None:
    """(D, where it was read) from the checkpoint folder, or None."""
    folder = Path(model).expanduser()
    for file_name, key in TOKEN_SOURCES:
        file = folder / file_name
        if not file.is_file():
            continue
        try:
            value = json.loads(file.read_text()).get(key)
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
            raise SweepError(f"{file}: not a JSON object ({err})") from None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value), f"{file_name}:{key}"
    return None


def _metadata(path: str | Path | None) -> dict[str, dict]:
    if path is None:
        return {}
    df = canonical_columns(read_table(path), path)
    if "name" not in df:
        raise SweepError(f"{path}: the metadata table needs a 'name' column (the checkpoint folder names)")
    df["name"] = df["name"].astype(str)
    if df["name"].duplicated().any():
        raise SweepError(f"{path}: duplicate names {sorted(set(df['name'][df['name'].duplicated()]))[:10]}")
    meta = {row["name"]: {k: v for k, v in row.items() if k != "name" and not _missing(v)}
            for row in df.to_dict(orient="records")}
    for name, row in meta.items():        # checked before any work
        for column in ("N", "D"):
            if column in row:
                row[column] = _positive(row[column], f"{path}: row {name!r}, column {column}")
    return meta


def _positive(value: Any, where: str) -> float:
    """A token count: a finite number > 0 (fit takes its logarithm)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SweepError(f"{where}: {value!r} is not a number (expected training tokens, e.g. 2e9)") from None
    if not math.isfinite(number) or number <= 0:
        raise SweepError(f"{where}: {value!r}: expected a positive, finite number of training tokens")
    return number


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _tokens(ckpts: list[SweepEntry], meta: dict[str, dict], metadata: str | Path | None) -> dict[str, tuple]:
    """D of every checkpoint, checked before any work: fit cannot use a run without it."""
    out, missing = {}, []
    for ckpt in ckpts:
        if "D" in meta.get(ckpt.name, {}):
            out[ckpt.name] = (meta[ckpt.name]["D"], f"metadata {metadata}")
        elif (found := tokens_from_checkpoint(ckpt.model)) is not None:
            out[ckpt.name] = found
        else:
            missing.append(ckpt.name)
    if missing:
        where = " / ".join(f"{f}:{k}" for f, k in TOKEN_SOURCES)
        # a mistyped relative folder (ckpts/m7) reads as a Hub id: say so, or the message misleads
        not_folders = [c.model for c in ckpts if c.name in missing and not Path(c.model).expanduser().is_dir()]
        hint = f" ({', '.join(not_folders[:5])}: no such folder, taken as a Hub id)" if not_folders else ""
        raise SweepError(f"no training-token count D for {missing[:10]}{hint}: give a --metadata table with name "
                         f"and D columns, or put it in the checkpoint folder ({where})")
    unknown = sorted(set(meta) - {c.name for c in ckpts})
    if unknown:
        log.warning("metadata rows without a checkpoint in this sweep: %s", unknown[:10])
    return out


def _params(name: str, counted: int, meta: dict[str, dict], metadata) -> tuple[float, str]:
    """N of a run: a metadata N wins (a paper's own count, say), else the count from the loaded model; both
    are recorded, and a disagreement is said."""
    if "N" not in meta.get(name, {}):
        return counted, "counted from the model"
    given = meta[name]["N"]
    if abs(given - counted) > 0.01 * counted:
        log.warning("%s: N = %s from %s, but the model has %s non-embedding parameters; runs.csv uses the "
                    "metadata's N", name, f"{given:,.0f}", metadata, f"{counted:,}")
    return given, f"metadata {metadata} (counted from the model: {counted})"


def prepare_units(configs, data_root, tokenizer, cache, world, progress: bool) -> None:
    """Tokenise every task's audio once, into `cache` (shared out over torchrun ranks): bad audio stops
    the sweep here, before any checkpoint, and every checkpoint after finds its units cached."""
    from slmeval.units import tokenize_sources

    for cfg in configs:
        utts = [u for p in read_task(cfg, data_root) for u in (p.positive, p.negative) if u.units is None]
        if not utts:
            continue
        sources, names = [u.audio for u in utts], [u.file or u.key for u in utts]
        shard_sources(world, sources, lambda part: tokenize_sources(
            [sources[i] for i in part], [names[i] for i in part], tokenizer, cache, progress=progress))


def _finished(out_dir: Path, lm: LoadedLM, settings: dict, tasks: list[str]) -> dict | None:
    """results.json of the same model files and settings holding every task, or None."""
    path = out_dir / RESULTS_FILE
    try:
        results = json.loads(path.read_text())
        config = results["config"]
        same = (results["provenance"]["model_sha256"] == lm.sha256
                and all(config.get(k) == v for k, v in settings.items()) and set(tasks) <= set(results["results"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return results if same else None


def run_sweep(checkpoints: Sequence[SweepEntry], tasks: Sequence[str], settings: RunSettings | None = None, *,
              metadata: str | Path | None = None, **options: Any) -> SweepReport:
    """Every checkpoint evaluated with the same `settings` (a RunSettings, or its fields as keywords, which
    override it) into `<settings.output>/<name>/`; `metadata`: the table with D (and N, ...) per name."""
    s = resolve_settings(settings, options, "run_sweep()")
    output, device, tokenizer = s.output, s.device, s.tokenizer
    if output is None:
        raise SweepError("--output: a sweep writes a folder per checkpoint and runs.csv; give the folder")
    check_device(device)
    if not [t for t in tasks if str(t).strip()]:     # else every checkpoint would load, then fail alike
        raise SweepError("--tasks names no task (got only commas or spaces); `slmeval tasks` lists them")
    check_output_path(output, "--output", folder=True)
    world = current_world(device)
    asked, device, progress = device, world_device(device), s.progress and world.is_main
    out = Path(output).expanduser()
    configs = get_tasks(list(tasks), list(s.include_path or []))
    check_families(configs)          # families and headlines: before any audio is tokenised
    proto = get_protocol(s.protocol, s.protocol_args if isinstance(s.protocol_args, dict)
                         else parse_kv(s.protocol_args, "--protocol-args"))
    names = world.all_gather([c.name for c in checkpoints])
    if any(other != names[0] for other in names):     # e.g. a glob that matches other folders on another node
        differ = next(rank for rank, other in enumerate(names) if other != names[0])
        raise SweepError(f"--models lists different checkpoints on rank 0 ({names[0][:10]}) and rank {differ} "
                         f"({names[differ][:10]}): every rank must sweep the same list")
    meta = _metadata(metadata)
    tokens = _tokens(list(checkpoints), meta, metadata)
    if world.is_main:
        _warn_dropped_rows(out, [c.name for c in checkpoints])
    report = SweepReport()
    tok, temp = tokenizer, None
    cache_root = None
    if tokenizer is not None:
        from slmeval.units import UnitCache, default_cache_dir, load_tokenizer

        tok = load_tokenizer(tokenizer, allow_pickle=s.allow_pickle, device=device) if isinstance(tokenizer, str) \
            else tokenizer
        if not s.use_cache:      # units are still computed once: kept for this sweep only
            temp = tempfile.TemporaryDirectory(prefix="slmeval-sweep-units-")
        cache_root = Path(temp.name) if temp else Path(s.cache_dir).expanduser() if s.cache_dir else default_cache_dir()
        prepare_units(configs, s.data_root, tok, UnitCache(cache_root, tok.identity), world, progress)
    # what a finished checkpoint's results.json must have been made with, for --resume to skip it
    settings = sweep_identity(s, tok.identity if tok is not None else None, proto.to_dict())
    load_args = dict(model_args=s.model_args, device=device, dtype=s.dtype,
                     n_units=tok.n_units if tok is not None else None)
    # every checkpoint's evaluate: these settings, with the loaded tokenizer, the sweep's unit cache and the
    # device as asked (evaluate maps it to this rank's device itself)
    eval_settings = s.replace(tokenizer=tok, cache_dir=cache_root, device=asked, progress=progress, use_cache=True)
    try:
        for i, ckpt in enumerate(checkpoints):
            log.info("sweep: checkpoint %d/%d %s (%s)", i + 1, len(checkpoints), ckpt.name, ckpt.model)
            row = _one_checkpoint(ckpt, [c.name for c in configs], out / ckpt.name, world, settings, load_args,
                                  eval_settings, report)
            if row is not None:
                D, D_source = tokens[ckpt.name]
                extra = {k: v for k, v in meta.get(ckpt.name, {}).items() if k not in ("D", "N")}
                N, N_source = _params(ckpt.name, row.pop("N"), meta, metadata)
                report.rows.append({"name": ckpt.name, "N": N, "D": D, **extra, **row, "checkpoint": ckpt.model,
                                    "N_source": N_source, "D_source": D_source})
            if world.is_main:
                write_outputs(out, report)
    finally:
        if temp is not None:
            temp.cleanup()
    return report


def _one_checkpoint(ckpt: SweepEntry, tasks: list[str], run_dir: Path, world, settings: dict, load_args: dict,
                    eval_settings: RunSettings, report: SweepReport) -> dict | None:
    """{"N": ..., "<task>/<metric>": ...} of one checkpoint, or None (the failure is in `report`). Any
    error is this checkpoint's: the tasks and their audio were checked before the first one."""
    lm, load_error = None, None
    try:
        lm = load_lm(ckpt.model, **load_args)
        n_params = non_embedding_params(lm.model)
    except Exception as err:   # noqa: BLE001 - reported, and the sweep goes on
        load_error = f"{type(err).__name__}: {err}"
    # Every rank must agree before the collectives of `evaluate`: a rank that skipped this checkpoint would
    # pair its next checkpoint's scores with this one's on the other ranks (wrong numbers, no error).
    outcomes = world.all_gather((load_error, lm.sha256 if lm is not None else None))
    failed = [(rank, error) for rank, (error, _) in enumerate(outcomes) if error is not None]
    if not failed and len({sha for _, sha in outcomes}) > 1:
        failed = [(0, f"DistributedError: ranks loaded different model files (sha256 "
                      f"{sorted({sha[:12] for _, sha in outcomes})}): is the checkpoint the same on every node?")]
    if failed:
        large = _large(lm)
        del lm
        _free_memory(large)
        rank, error = next(((r, e) for r, e in failed if r == world.rank), failed[0])
        where = "" if rank == world.rank else f"rank {rank} of {world.world_size}: "
        return _failed(report, ckpt, "load", where + error)
    try:
        # rank 0 reads (only it writes); every rank follows
        results = world.broadcast(_finished(run_dir, lm, settings, tasks)
                                  if eval_settings.resume and world.is_main else None)
        if results is not None:
            log.info("sweep: %s already evaluated (%s); skipped", ckpt.name, run_dir / RESULTS_FILE)
        else:
            results = evaluate(lm, tasks, eval_settings.replace(output=run_dir))
    except Exception as err:   # noqa: BLE001 - reported, and the sweep goes on
        shared = isinstance(err, DistributedError) or getattr(err, "reported_by_rank0", False)
        if world.world_size > 1 and not shared:
            # an error of this rank alone (e.g. rank 0 cannot write the output): the others are still inside this
            # checkpoint's collectives, so going on would pair mismatched collectives; stop (--resume continues)
            raise
        return _failed(report, ckpt, "evaluate", f"{type(err).__name__}: {err}")
    finally:
        large = _large(lm)
        del lm
        _free_memory(large)
    metrics = results_metrics(results, run_dir / RESULTS_FILE)
    return {"N": n_params, **{k: v for k, v in metrics.items() if k.split("/")[0] in tasks}}


def _failed(report: SweepReport, ckpt: SweepEntry, stage: str, error: str) -> None:
    log.error("sweep: %s failed to %s: %s", ckpt.name, stage, error)
    report.failures.append({"name": ckpt.name, "model": ckpt.model, "stage": stage, "error": error})
    return None


# A full gc.collect() walks every Python object (~0.2 s here, once transformers is imported): worth it to
# return a large model's memory before the next checkpoint loads, not for small ones (measured: half of a
# 10-checkpoint CPU sweep's wall time), whose cycles the collector reclaims on its own.
COLLECT_ABOVE_BYTES = 256 * 2**20


def _large(lm: LoadedLM | None) -> bool:
    if lm is None:
        return False
    size = sum(p.numel() * p.element_size() for p in lm.model.parameters())
    return size >= COLLECT_ABOVE_BYTES or lm.device.type == "cuda"


def _free_memory(large: bool) -> None:
    """Called after the caller dropped its reference to the model (a collection before that frees nothing)."""
    if not large:
        return
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _warn_dropped_rows(out: Path, names: list[str]) -> None:
    """runs.csv is this sweep's table: say which rows of the previous one it will not hold (a sweep of only
    the newest checkpoints is a common way to lose the others from the table `slmeval fit` reads)."""
    try:
        previous = pd.read_csv(out / RUNS_TABLE, usecols=["name"], dtype=str)["name"].tolist()
    except (OSError, ValueError):        # none yet, or not a table this sweep wrote: nothing to compare
        return
    kept = set(names)
    dropped = [n for n in previous if n not in kept]
    if dropped:
        log.warning("sweep: %s will be rewritten without %d checkpoint(s) of its previous table (%s); their "
                    "results stay in %s/<name>/. To keep one table, sweep every checkpoint with --resume "
                    "(finished ones are not evaluated again).", out / RUNS_TABLE, len(dropped),
                    ", ".join(dropped[:8]) + (", ..." if len(dropped) > 8 else ""), out)


def write_outputs(out: Path, report: SweepReport) -> None:
    """runs.csv (what `slmeval fit` reads) and sweep.json (rows + failures), both atomically."""
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(report.rows)
    atomic_write_text(out / RUNS_TABLE, table.to_csv(index=False) if report.rows else "name,N,D\n")
    write_json(out / MANIFEST, {"runs": report.rows, "failures": report.failures})
