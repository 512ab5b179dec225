"""`slmeval.evaluate`: tasks → pairs → units (cached) → batched log-likelihoods → accuracies → files.

The returned dict is exactly what is written to `<output>/results.json`.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np

from slmeval.data import Pair, read_pairs
from slmeval.data.base import max_unit_of
from slmeval.distributed import World, check_device, current_world, shard_sources, world_device
from slmeval.exports.base import check_exports, parse_exports, run_exports
from slmeval.metrics.families import FAMILY_SHAPE, METRIC_FAMILIES, check_headlines, compute_metrics
from slmeval.models import LoadedLM, load_lm, parse_kv
from slmeval.models.instance import is_model_object, wrap_model
from slmeval.plugins import PluginError
from slmeval.task_loader.registry import TaskConfig, TaskError, get_tasks
from slmeval.io import dumps, ensure_inside, safe_name, write_files_together
from slmeval.results.preflight import preflight
from slmeval.results.files import (RESULTS_FILE, data_sha256, items_sha256, meta_sha256, previous_run_files, provenance,
                             units_sha256)
from slmeval.results.resume import PARTIAL_DIR, PartialStore, decide
from slmeval.run_setup import RECIPE, resolve_setup_for_world
from slmeval.settings import RunSettings, resolve_settings, run_identity
from slmeval.scoring import Protocol, check_protocol, distinct_sequences, get_protocol
from slmeval.scoring.batch import ScoreColumns, score_columns
from slmeval.scoring.protocol import reduce_dtype
from slmeval.scoring.logprobs import effective_backend
from slmeval.results.samples import Samples, as_samples, task_samples
from slmeval.task_loader.data import TaskData, resolve_for_world, resolve_task_data

log = logging.getLogger(__name__)
__all__ = ["PARTIAL_DIR", "PreparedRun", "RunSettings", "TaskRun", "assemble", "evaluate", "prepare", "run_task",
           "score"]


@dataclass
class TaskRun:
    metrics: dict
    breakdowns: dict
    samples: Samples            # the lines of samples_<task>.jsonl (a saved partial's rows are encoded on load)
    hashes: dict
    warnings: list[str] = field(default_factory=list)   # counted, but a careful user wants to know

    def __post_init__(self) -> None:
        self.samples = as_samples(self.samples)


def check_families(configs: list[TaskConfig]) -> None:
    """Before any work: every task's metric family is registered and takes (df, grouping) (a plugin may be
    missing, broken, or written to another signature)."""
    for cfg in configs:
        try:
            METRIC_FAMILIES.check_call(cfg.family, None, None, shape=FAMILY_SHAPE)   # placeholders: (df, grouping)
        except PluginError as err:
            raise TaskError(f"task {cfg.name!r} ({cfg.origin}): {err}") from None
    check_headlines(configs)           # a mistyped headline: named now, not after the task was scored


def _utterances(pairs: list[Pair]) -> list:
    return [u for p in pairs for u in (p.positive, p.negative)]


def _pretokenised(utts: list) -> tuple[list[np.ndarray], list[str]]:
    """Units (int64 arrays: the reader's own, or views of one array) and content hashes of pre-tokenised
    utterances, all at once."""
    held = [u.units for u in utts]
    if all(type(x) is np.ndarray and x.dtype == np.int64 and x.ndim == 1 for x in held):
        return held, [units_sha256(x) for x in held]       # the built-in readers' int64 views: no copy
    lengths = np.fromiter(map(len, held), np.int64, len(utts))
    flat = np.fromiter(chain.from_iterable(held), np.int64, int(lengths.sum()))   # lists / tuples of ints
    ends = np.cumsum(lengths).tolist()
    return [flat[e - n:e] for e, n in zip(ends, lengths.tolist())], [units_sha256(u.units) for u in utts]


def _all_pretokenised(pairs: list[Pair]) -> bool:
    return all(p.positive.units is not None and p.negative.units is not None for p in pairs)


def content_hashes(pairs: list[Pair]) -> list[str]:
    """sha256 of every utterance's content in pair order, without decoding anything: the audio bytes
    (what the unit cache keys on) or the units of pre-tokenised tasks. Equal to the hashes
    `_units_for` returns, so a resume decision and a fresh run agree on `data_sha256`."""
    utts = _utterances(pairs)
    if all(u.units is not None for u in utts):
        return _pretokenised(utts)[1]
    out = []
    for u in utts:
        try:
            data = u.audio if isinstance(u.audio, (bytes, bytearray)) else Path(u.audio).read_bytes()
        except (OSError, TypeError) as err:
            raise TaskError(f"{u.file or u.key}: cannot read audio ({err})") from None
        out.append(hashlib.sha256(data).hexdigest())
    return out


def _units_for(pairs: list[Pair], tokenizer, cache, progress: bool, notes: list[str],
               world: World = World()) -> tuple[list[np.ndarray], list[str]]:
    """Units of every utterance in pair order (pos, neg, pos, neg, ...) and their content hashes.
    Under torchrun each rank tokenises its share of the unique audio (slmeval/distributed.py)."""
    utts = _utterances(pairs)
    if all(u.units is not None for u in utts):
        return _pretokenised(utts)
    if tokenizer is None:
        raise TaskError("this task holds audio: pass --tokenizer (a tokenizer dir or 'kind:key=value,...')")
    from slmeval.units import tokenize_sources

    sources, names = [u.audio for u in utts], [u.file or u.key for u in utts]
    mine: list[str] = []
    units, hashes = shard_sources(world, sources, lambda part: tokenize_sources(
        [sources[i] for i in part], [names[i] for i in part], tokenizer, cache, progress=progress, notes=mine))
    notes.extend(note for rank_notes in world.all_gather(mine) for note in rank_notes)
    return units, hashes


def read_task(cfg: TaskConfig, data_root, located: TaskData | None = None) -> list[Pair]:
    """The task's pairs from its local layout or its pinned public copy (slmeval/task_loader/data.py)."""
    located = located or resolve_task_data([cfg], data_root)[cfg.name]
    pairs = read_pairs(located.source, located.path, **located.options)
    if not pairs:
        raise TaskError(f"task {cfg.name!r}: the reader found no pairs")
    _check_grouping(cfg, pairs, located.source)
    return pairs


def _check_grouping(cfg: TaskConfig, pairs: list[Pair], reader: str) -> None:
    """Before any audio work: the columns the task file groups by are columns its reader produces (a typo
    in `grouping: {voice: ...}` would otherwise drop the per-voice numbers without a word)."""
    g = cfg.grouping
    produced = set().union(*(p.meta for p in pairs))
    missing = [c for c in (*([g.voice] if g.voice else []), *g.item, *g.breakdown) if c not in produced]
    if missing:
        raise TaskError(f"task {cfg.name!r} ({cfg.origin}): grouping names column(s) {', '.join(missing)} that "
                        f"reader {reader!r} does not produce; its columns: {', '.join(sorted(produced)) or 'none'}")


def _identical_sides(pairs: list[Pair], hashes: list[str]) -> list[str]:
    """Pairs whose two sides are the same file or the same content: scored (a tie), but flagged."""
    same = [p.id for i, p in enumerate(pairs) if hashes[2 * i] == hashes[2 * i + 1]]
    if not same:
        return []
    shown = ", ".join(same[:10]) + (f", ... ({len(same)} in all)" if len(same) > 10 else "")
    return [f"{len(same)} pair(s) have identical positive and negative audio (same file or same content; "
            f"counted, and scored as ties): {shown}"]


def run_task(cfg: TaskConfig, lm: LoadedLM, protocol: Protocol, *, data_root, tokenizer, cache,
             batch_size: int, backend: str, progress: bool, pairs: list[Pair] | None = None,
             world: World = World()) -> TaskRun:
    pairs = read_task(cfg, data_root) if pairs is None else pairs
    notes: list[str] = []                  # near-silent files (logged by tokenize_sources) ...
    units, hashes = _units_for(pairs, tokenizer, cache, progress, notes, world)
    for note in _identical_sides(pairs, hashes):   # ... and pairs that compare a file with itself
        log.warning("%s: %s", cfg.name, note)
        notes.append(note)
    # Each distinct unit sequence once (identical sides must tie, even across ranks); under torchrun each
    # rank scores its share of them, dealt by length. Pre-tokenised units are keyed by their content hashes.
    firsts, which = distinct_sequences(units, keys=hashes if _all_pretokenised(pairs) else None)

    def score_share(part: list[int]) -> tuple[np.ndarray, np.ndarray]:
        cols = score_columns(lm, [units[firsts[i]] for i in part], protocol,
                             names=_Names(cfg.name, pairs, [firsts[i] for i in part]), batch_size=batch_size,
                             backend=backend, progress=progress)
        return cols.logprob, cols.n_scored

    scored = ScoreColumns(*world.map_columns(score_share, range(len(firsts)),
                                             weights=[len(units[i]) for i in firsts]), dtype=reduce_dtype(protocol))
    # Rows straight to their JSONL lines (encoded once: the samples file and the partial reuse them), and the
    # metric frame column-wise; the same `metric_frame` and family functions `slmeval.results.verify` re-derives with.
    samples, frame = task_samples(pairs, units, scored, which, protocol.score,
                                  protocol.tie_value_for(cfg.family, cfg.tie_value_by_protocol))
    metrics, breakdowns = compute_metrics(cfg.family, frame, cfg.grouping)
    headline = cfg.headline_for(protocol.name)
    if headline not in metrics:     # the leaderboard and the export would look for it
        raise TaskError(f"task {cfg.name!r} ({cfg.origin}): headline {headline!r} is not a metric that family "
                        f"{cfg.family!r} computes for it; it computes: {', '.join(sorted(metrics))}")
    task_hashes = {"items_sha256": items_sha256((p.id, p.positive.key, p.negative.key) for p in pairs),
                   "data_sha256": data_sha256(hashes), "meta_sha256": _meta_hash(pairs), "version": cfg.version}
    return TaskRun(metrics, breakdowns, samples, task_hashes, notes)


class _Names(Sequence[str]):
    """`task:pair:side` of utterance `index[i]`, made only when an error names it (not twice per pair)."""

    def __init__(self, task: str, pairs: list[Pair], index: list[int]):
        self.task, self.pairs, self.index = task, pairs, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):  # type: ignore[override]
        u = self.index[i]
        return f"{self.task}:{self.pairs[u // 2].id}:{('positive', 'negative')[u % 2]}"


def _meta_hash(pairs: Sequence[Pair]) -> str:
    return meta_sha256((p.id, p.meta) for p in pairs)


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _result_files(out_dir: Path, results: dict, runs: dict[str, TaskRun]) -> dict[Path, str]:
    """samples_<task>.jsonl and results.json by resolved path, each refused if it would leave --output."""
    files = {ensure_inside(f"samples_{safe_name(name, 'task name')}.jsonl", out_dir, "samples file"):
             r.samples.lines for name, r in runs.items()}
    files[ensure_inside(RESULTS_FILE, out_dir, "results file")] = dumps(results)   # last: the index of the rest
    return files


@dataclass
class PreparedRun:
    """Everything `evaluate` resolved and checked before the first pair is scored."""
    configs: list[TaskConfig]
    world: World
    proto: Protocol
    exports: list
    setup: Any
    located: dict[str, TaskData]
    task_pairs: dict[str, list[Pair]]
    lm: LoadedLM
    out_dir: Path | None
    cache: Any
    store: PartialStore | None
    saved: dict
    backend: str
    run_config: dict
    progress: bool


def evaluate(model: str | Path | LoadedLM | Any, tasks: str | Sequence[str], settings: RunSettings | None = None,
             **options: Any) -> dict:
    """Evaluate a causal LM over speech units on registered tasks; returns (and writes) results.json.

    `model`: a checkpoint folder, a Hub id (`org/name[@revision]`), or a transformers model object in
    memory (its unit mapping from `model.config` and `model_args`; slmeval/models/instance.py).
    `tasks`: task names, as a list or one comma-separated string ("mini_sblimp,mini_tstorycloze").
    `settings`: a `slmeval.settings.RunSettings`; or the same options as keywords (those that differ from
    their defaults also override `settings`): data_root, tokenizer, protocol, protocol_args, model_args,
    batch_size, device, dtype, output, include_path, cache_dir, use_cache, logprob_backend, export,
    allow_pickle, resume, progress, limit.
    `limit`: score only the first N pairs of each task; `config.limit` marks the run as partial
    (the leaderboard refuses it)."""
    s = resolve_settings(settings, options, "evaluate()")
    run = prepare(model, tasks, s)
    runs, resumed = score(run, s)
    results = assemble(run, runs, resumed)
    if run.out_dir is not None and run.world.is_main:
        # samples + results.json: all or none, and the previous run's files go with its results.json
        write_files_together(_result_files(run.out_dir, results, runs), replaces=previous_run_files(run.out_dir))
        # exports after the results: a failing export (a full disk, a bad task file) loses no results
        run_exports(run.exports, run.out_dir, run.configs, {n: r.metrics for n, r in runs.items()},
                    {n: r.samples for n, r in runs.items()})
        run.store.clean()
    return results


# The keyword form's real signature (pydoc, IDEs): one parameter per RunSettings field, with its default.
evaluate.__signature__ = inspect.Signature([
    *list(inspect.signature(evaluate).parameters.values())[:3],
    *(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
      for f in fields(RunSettings))], return_annotation=dict)


def prepare(model: str | Path | LoadedLM | Any, tasks: str | Sequence[str], s: RunSettings) -> PreparedRun:
    """Tasks, protocol, exports, model + tokenizer, data and output checked, in the order that fails before
    any expensive work; the per-task partial results of an interrupted run loaded for --resume."""
    if isinstance(tasks, str):      # as on the command line; a bare string is never a sequence of letters
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    if s.limit is not None and s.limit < 1:
        raise ValueError(f"--limit {s.limit}: must be a positive number of pairs per task")
    check_device(s.device)              # a GPU this torch cannot use: one error before any work
    world = current_world(s.device)     # torchrun: this rank's place; a world of one otherwise
    device, progress = world_device(s.device), s.progress and world.is_main
    if not [t for t in tasks if str(t).strip()]:     # before the model loads and before --output is touched
        raise TaskError("--tasks names no task (got only commas or spaces); `slmeval tasks` lists them")
    configs = get_tasks(list(tasks), list(s.include_path or []))
    for cfg in configs:                    # task names become file names: refuse any that is a path
        safe_name(cfg.name, f"task name (defined in {cfg.origin})")
    proto_args = s.protocol_args if isinstance(s.protocol_args, dict) else parse_kv(s.protocol_args, "--protocol-args")
    proto = get_protocol(s.protocol, proto_args) if s.protocol != RECIPE else None
    check_families(configs)
    exports = parse_exports(s.export)
    check_exports(exports, configs)
    # Model (a Hub id downloaded), its family's recipe, the tokenizer and the protocol: resolved before any
    # data is read (slmeval/run_setup.py); a UnitTokenizer instance is accepted as is.
    # Under torchrun rank 0 downloads, the other ranks then read its caches (as for the data below).
    setup = resolve_setup_for_world(world, model, model_args=s.model_args, tokenizer=s.tokenizer,
                                    protocol=s.protocol, configs=configs, allow_pickle=s.allow_pickle, device=device)
    proto = proto or get_protocol(setup.protocol, proto_args)
    located = resolve_for_world(world, configs, s.data_root, progress=progress)   # all tasks' data, or one error
    # --limit: the first N pairs of each task in reader order (a partial run, as lm-eval's --limit)
    task_pairs = {cfg.name: read_task(cfg, s.data_root, located[cfg.name])[:s.limit] for cfg in configs}
    out_dir = Path(s.output).expanduser() if s.output else None
    tok, cache, cache_root = setup.tokenizer, None, None
    if tok is not None and s.use_cache:
        from slmeval.units import default_cache_dir

        cache_root = Path(s.cache_dir).expanduser() if s.cache_dir else default_cache_dir()
    lm = _load_model(model, s, device, tok, setup)
    check_protocol(lm, proto)
    top = max_unit_of([u for ps in task_pairs.values() for u in _utterances(ps)])
    if tok is None and top >= 0:    # pre-tokenised units: K unknown, the data's largest unit stands in for it
        lm.check_units(top + 1, "the task data")
    preflight(task_pairs, out_dir if world.is_main else None, cache_root)
    # Only rank 0 writes (results and partial results); every rank follows its resume decisions.
    store = PartialStore(out_dir) if out_dir is not None and world.is_main else None
    saved = world.broadcast({cfg.name: store.load(cfg.name) for cfg in configs}
                            if s.resume and store is not None else {})
    if tok is not None and cache_root is not None:
        from slmeval.units import UnitCache

        cache = UnitCache(cache_root, tok.identity)
    backend = effective_backend(s.logprob_backend, lm.device, proto.logprob_dtype)   # recorded as it will run
    run_config = run_identity(s, lm.describe(), tok.identity if tok else None, proto.to_dict(), backend)
    return PreparedRun(configs, world, proto, exports, setup, located, task_pairs, lm, out_dir, cache, store, saved,
                       backend, run_config, progress)


def _load_model(model, s: RunSettings, device: str, tok, setup) -> LoadedLM:
    """K known: the mapping may be inferred from the config's specials, and K + offset is checked against
    the vocabulary here, before any audio work (and before any output or cache folder is created)."""
    if isinstance(model, LoadedLM):         # already loaded (slmeval sweep: N is counted from it first)
        if tok is not None:
            model.check_units(tok.n_units)
        return model
    if is_model_object(model):              # the Python API: a transformers model the caller holds
        return wrap_model(model, model_args=s.model_args, device=device, dtype=s.dtype,
                          n_units=tok.n_units if tok else None)
    return load_lm(model, model_args=s.model_args, device=device, dtype=s.dtype,
                   n_units=tok.n_units if tok else None, plan=setup.plan)


def score(run: PreparedRun, s: RunSettings) -> tuple[dict[str, TaskRun], dict[str, str]]:
    """Each task scored, or its partial result reused when --resume finds one of the same run and data."""
    runs: dict[str, TaskRun] = {}
    resumed: dict[str, str] = {}
    tok = run.setup.tokenizer
    for cfg in run.configs:
        pairs = run.task_pairs[cfg.name]
        fingerprint = _fingerprint(run.run_config, cfg.to_dict())
        if run.saved.get(cfg.name) is not None:
            decision = decide(run.saved[cfg.name], fingerprint,
                              items_sha256((p.id, p.positive.key, p.negative.key) for p in pairs),
                              data_sha256(content_hashes(pairs)), _meta_hash(pairs))
            log.info("%s: %s", cfg.name, decision.reason)
            resumed[cfg.name] = decision.reason
            if decision.reuse:
                runs[cfg.name] = TaskRun(**run.saved[cfg.name]["run"])
                continue
        log.info("%s: evaluating (%s, %s)", cfg.name, cfg.source, "mini data" if cfg.mini else "full data")
        runs[cfg.name] = run_task(cfg, run.lm, run.proto, data_root=s.data_root, tokenizer=tok, cache=run.cache,
                                  batch_size=s.batch_size, backend=run.backend, progress=run.progress, pairs=pairs,
                                  world=run.world)
        if run.store is not None:
            run.store.save(cfg.name, fingerprint, runs[cfg.name].__dict__)
    return runs, resumed


def assemble(run: PreparedRun, runs: dict[str, TaskRun], resumed: dict[str, str]) -> dict:
    """results.json: metrics, breakdowns, task configs, run config and provenance."""
    proto, lm = run.proto, run.lm
    results = {
        "results": {name: r.metrics for name, r in runs.items()},
        "breakdowns": {name: r.breakdowns for name, r in runs.items() if r.breakdowns},
        "configs": {c.name: {**c.to_dict(), "headline": c.headline_for(proto.name),
                             "tie_value": proto.tie_value_for(c.family, c.tie_value_by_protocol)} for c in run.configs},
        "versions": {c.name: c.version for c in run.configs},
        "n_samples": {name: len(r.samples) for name, r in runs.items()},
        # `distributed` is not in the fingerprint: a resumed run may use another world
        "config": {**run.run_config, "distributed": run.world.describe()},
        # model_hub: the Hub repo and the commit sha its files were resolved to (None for a local folder)
        "provenance": {**provenance(lm.sha256, {name: r.hashes for name, r in runs.items()}), "model_hub": lm.hub,
                       "data": {name: run.located[name].provenance for name in runs},
                       "setup": {**run.setup.sources, "warnings": run.setup.warnings}},
    }
    warnings = {name: r.warnings for name, r in runs.items() if r.warnings}
    if warnings:
        results["warnings"] = warnings
    if resumed:
        results["provenance"]["resumed"] = resumed
    return results
