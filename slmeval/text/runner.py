"""`slmeval text`: a HF text causal LM on text tasks through `lm_eval.simple_evaluate`.

Writes, in the output folder, lm-eval's own files exactly as `lm_eval --output_path OUT/results.json
--log_samples` would (`results_<timestamp>.json`, `samples_<task>_<timestamp>.jsonl`) and, beside
them, an slmeval `results.json` + `samples_<task>.jsonl` (one line per likelihood pair) with
provenance, so `slmeval fit`, the leaderboard and `slmeval check` read text runs like speech runs.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

from slmeval.io import dumps, ensure_inside, jsonl_line, parse_kv, safe_name, write_files_together
from slmeval.results.preflight import check_writable
from slmeval.results.files import RESULTS_FILE, previous_run_files, provenance
from slmeval.text.convert import ConversionError, leaf_tasks, task_run
from slmeval.text.data import TextTaskError
from slmeval.text.paradigms import TASK_DIR
from slmeval.text.twins import twin_table

log = logging.getLogger(__name__)
PROTOCOL = {"name": "lm-eval", "output_type": "multiple_choice", "score": "sum",
            "start_token": "context, or the tokenizer's BOS (else EOS) when the context is empty",
            "target_delimiter": "task's (default ' ')", "tie": "first choice (argmax)", "score_eos": False}


class TextRunError(ValueError):
    """A text run that cannot start or finish; the message says what and where."""


class _DropCustomDatasetHint(logging.Filter):
    # lm-eval logs, once per task with `custom_dataset:`, how to pass --metadata: our tasks get it.
    def filter(self, record: logging.LogRecord) -> bool:
        return "Custom kwargs can be passed" not in record.getMessage()


def _require_lm_eval():
    try:
        import lm_eval  # noqa: F401
    except ImportError as exc:
        raise TextRunError("`slmeval text` runs lm-eval, which is not installed: pip install 'lm-eval[hf]>=0.4.9'") \
            from exc
    import lm_eval

    return lm_eval


def resolve_text_model(pretrained: str, revision: str | None, trust_remote_code: bool) -> dict:
    """Find the checkpoint (a local folder, or a Hub id fetched into the HF cache as lm-eval would) and
    check transformers can read its config, before any work; return its identity for provenance:
    sha256 over config, weights and tokenizer files, as speech runs' model hash (slmeval.models.identity)."""
    from transformers import AutoConfig

    from slmeval.models import ModelError
    from slmeval.models.base import Checkpoint
    from slmeval.models.hf import HFAdapter
    from slmeval.models.hub import resolve_model
    from slmeval.models.identity import behaviour_files, file_hashes, model_sha256

    where = f"--model {pretrained!r}{f' (revision {revision})' if revision else ''}"
    try:
        resolved = resolve_model(pretrained, revision if not Path(pretrained).expanduser().is_dir() else None)
        config = AutoConfig.from_pretrained(resolved.directory, trust_remote_code=trust_remote_code)
    except ModelError as exc:     # its message may already start with the --model part
        detail = str(exc).removeprefix(f"--model {pretrained!r}: ")
        raise TextRunError(f"{where}: lm-eval cannot load it: {detail}") from exc
    except (OSError, ValueError, KeyError) as exc:
        raise TextRunError(f"{where}: lm-eval cannot load it: {str(exc).splitlines()[0]}") from exc
    ckpt = Checkpoint(resolved.directory, config.to_dict(), pretrained, resolved.hub)
    weights = HFAdapter().weight_files(ckpt)
    if not weights:
        raise TextRunError(f"{where}: lm-eval cannot load it: no weight files in {resolved.directory}")
    files = file_hashes(behaviour_files(resolved.directory, weights), resolved.directory)
    tokenizer = {"kind": "text", "name_or_path": pretrained, "revision": revision,
                 "files": {n: h for n, h in files.items() if n.startswith(("tokenizer", "vocab", "merges",
                                                                           "special_tokens", "added_tokens"))}}
    return {"sha256": model_sha256(files), "files": files, "hub": resolved.hub, "tokenizer": tokenizer}


def _unreadable_yamls(folders: Sequence[str | Path]) -> list[str]:
    """Task YAMLs lm-eval skips without a word because they do not parse (its `!function` tags and
    other custom tags are accepted here, as lm-eval accepts them)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)
    bad = []
    for folder in folders:
        for path in sorted(Path(folder).expanduser().rglob("*.y*ml")):
            try:
                yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)
            except (yaml.YAMLError, OSError, UnicodeDecodeError) as err:
                bad.append(f"{path} ({str(err).splitlines()[0]})")
    return bad


def _load_tasks(task_manager, names: list[str], include_path: Sequence[str | Path] = ()) -> list:
    """Build every requested task (reading its data) before the model is loaded: bad data fails fast."""
    unknown = [n for n in names if n not in task_manager.all_tasks]
    if unknown:
        ours = sorted(n for n in task_manager.all_tasks if n.startswith("text_") and "_blimp_" not in n)
        bad = _unreadable_yamls(include_path)
        raise TextRunError(f"--tasks: unknown task(s) {unknown}; slmeval's text twins: {ours} "
                           "(any lm-eval task name also works)"
                           + (f"; lm-eval skipped these --include-path files, which are not valid YAML: "
                              f"{'; '.join(bad)}" if bad else ""))
    built = []
    for name in names:   # one at a time: a tag expands to its own tasks only
        loaded = task_manager.load([name])
        obj = loaded.get("groups", {}).get(name) or loaded["tasks"].get(name)
        built.extend([obj] if obj is not None else list(loaded["tasks"].values()))
    return built


def _resolved_files(task_objs: dict, leaves: list[str], data_root: str | None) -> dict:
    from slmeval.text.data import resolve_data_file

    files = {}
    for leaf in leaves:
        kwargs = task_objs[leaf].config.dataset_kwargs or {}
        for split, rel in (kwargs.get("data_files") or {}).items():
            found = resolve_data_file(data_root, rel) if data_root else None
            files[leaf] = str(found) if found else (f"hub:{kwargs['hub']['path']}/{kwargs['hub'].get('name')}"
                                                     if kwargs.get("hub") else rel)
    return files


def evaluate_text(model: str | None, tasks: Sequence[str], *, model_args: str | dict | None = None,
                  data_root: str | Path | None = None, include_path: Sequence[str | Path] | None = None,
                  limit: int | None = None, batch_size: int | str = 8, device: str = "cpu",
                  dtype: str | None = None, output: str | Path | None = None, seed: int = 0,
                  bootstrap_iters: int = 0) -> dict:
    """Run `tasks` with lm-eval on a HF causal LM; returns (and writes) the slmeval results.json."""
    lm_eval = _require_lm_eval()
    import datasets
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    datasets.disable_progress_bars()
    task_log = logging.getLogger("lm_eval.api.task")
    if not any(isinstance(f, _DropCustomDatasetHint) for f in task_log.filters):
        task_log.addFilter(_DropCustomDatasetHint())

    args = dict(model_args) if isinstance(model_args, dict) else parse_kv(model_args, "--model-args")
    if model is not None:
        if args.get("pretrained") not in (None, str(model)):
            raise TextRunError(f"--model {model!r} and --model-args pretrained={args['pretrained']!r} disagree")
        args["pretrained"] = str(model)
    if not args.get("pretrained"):
        raise TextRunError("no model: pass --model NAME_OR_PATH or --model-args pretrained=NAME_OR_PATH")
    if dtype:
        args.setdefault("dtype", dtype)
    args = {k: str(v) for k, v in args.items()}
    if limit is not None and limit < 1:
        raise TextRunError(f"--limit {limit}: must be a positive number of items per task")
    names = [t for t in tasks if t]
    if not names:
        raise TextRunError("--tasks: give at least one task")
    for name in names:                     # each names a samples_<task>.jsonl: never a path
        safe_name(name, "--tasks name")
    out_dir = Path(output) if output else None
    if out_dir is not None:
        check_writable(out_dir, "--output")
    identity = resolve_text_model(args["pretrained"], args.get("revision"),
                                  args.get("trust_remote_code", "").lower() == "true")

    metadata = {"data_root": str(Path(data_root).expanduser())} if data_root else {}
    paths = [str(TASK_DIR)] + [str(p) for p in include_path or []]
    # Indexing lm-eval's own ~15k task files takes seconds: only when a name is not one of ours.
    task_manager = TaskManager(include_path=paths, include_defaults=False, metadata=metadata)
    if any(n not in task_manager.all_tasks for n in names):
        task_manager = TaskManager(include_path=paths, metadata=metadata)
    built = _load_tasks(task_manager, names, include_path or [])
    tracker = EvaluationTracker(output_path=str(out_dir / RESULTS_FILE)) if out_dir else None
    try:
        raw = lm_eval.simple_evaluate(model="hf", model_args=args, tasks=built, task_manager=task_manager,
                                      batch_size=batch_size, device=device, limit=limit, log_samples=True,
                                      evaluation_tracker=tracker, bootstrap_iters=bootstrap_iters,
                                      random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
                                      fewshot_random_seed=seed)
    except TextTaskError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        raise TextRunError(f"lm-eval failed on model {args['pretrained']!r}: {str(exc).splitlines()[0]}") from exc
    samples = raw.pop("samples")
    lm_files = _save_lm_eval(tracker, raw, samples, out_dir) if tracker else {}
    results = _slmeval_results(raw, samples, names, args, built, data_root, limit, lm_files, identity,
                               batch_size=batch_size, device=device)
    if out_dir is not None:                # samples + results.json change together or not at all
        files = {ensure_inside(f"samples_{safe_name(name, 'task name')}.jsonl", out_dir, "samples file"):
                 "".join(jsonl_line(r) for r in rows) for name, rows in results.pop("_samples").items()}
        files[ensure_inside(RESULTS_FILE, out_dir, "results file")] = dumps(results)
        write_files_together(files, replaces=previous_run_files(out_dir))
    else:
        results.pop("_samples")
    return results


def _save_lm_eval(tracker, raw: dict, samples: dict, out_dir: Path) -> dict:
    """lm-eval's own files, written by its EvaluationTracker as its CLI does (which logs, rather than
    raises, a failed write: so check the files exist)."""
    copies = json.loads(json.dumps(samples, default=str))   # the tracker rewrites samples in place
    tracker.save_results_aggregated(results=dict(raw), samples=copies)
    for task_name in raw["configs"]:
        tracker.save_results_samples(task_name=task_name, samples=copies[task_name])
    date_id = getattr(tracker, "date_id", None)
    results_file = out_dir / f"results_{date_id}.json"
    if not date_id or not results_file.is_file():
        raise TextRunError(f"{out_dir}: lm-eval could not write its results file (see the log above)")
    return {"results_file": results_file.name,
            "samples_files": sorted(f"samples_{t}_{date_id}.jsonl" for t in raw["configs"])}


def _slmeval_results(raw: dict, samples: dict, names: list[str], args: dict, built: list, data_root,
                     limit, lm_files: dict, identity: dict, *, batch_size, device) -> dict:
    twins = twin_table()
    group_subtasks = raw.get("group_subtasks") or {}
    task_objs = {}
    for obj in built:
        for t in (obj.get_all_tasks() if hasattr(obj, "get_all_tasks") else [obj]):
            task_objs[t.task_name] = t
    out = {"results": {}, "breakdowns": {}, "configs": {}, "versions": {}, "n_samples": {}, "_samples": {}}
    hashes, skipped = {}, []
    for name in names:
        info = twins.get(name, {})
        try:
            metrics, breakdowns, rows, task_hash = task_run(name, info.get("breakdown", []), samples,
                                                            group_subtasks)
        except ConversionError as exc:
            skipped.append(name)
            log.warning("%s: written by lm-eval only, no slmeval pairs (%s)", name, exc)
            continue
        leaves = leaf_tasks(name, group_subtasks)
        version = raw["versions"].get(name, 1)
        out["results"][name] = metrics
        if breakdowns:
            out["breakdowns"][name] = breakdowns
        out["configs"][name] = {
            "name": name, "family": "pairs", "grouping": {"breakdown": info.get("breakdown", [])},
            "twin": info.get("twin"), "modality": "text", "source": "lm-eval", "lm_eval_tasks": leaves,
            "data_files": _resolved_files(task_objs, leaves, data_root),
            "headline": "acc_macro" if info.get("breakdown") else "acc",
            "leaderboard": info.get("leaderboard") or {"section": name, "title": name}, "mini": False}
        out["versions"][name] = version
        out["n_samples"][name] = len(rows)
        out["_samples"][name] = rows
        hashes[name] = {**task_hash, "version": version}
    if not out["results"]:
        raise TextRunError(f"none of {names} is a two-choice likelihood task; lm-eval's own files hold the results")
    cfg = raw.get("config") or {}
    out["config"] = {"model": args["pretrained"], "model_args": args, "modality": "text", "backend": "hf",
                     "revision": args.get("revision") or cfg.get("model_revision"), "hub": identity["hub"],
                     "model_files": identity["files"], "tokenizer": identity["tokenizer"],
                     "protocol": PROTOCOL, **({"batch_size": batch_size} if isinstance(batch_size, int) else {}),
                     "device": device, "dtype": str(cfg.get("model_dtype", "")).replace("torch.", ""),
                     "limit": limit, "partial": limit is not None, "data_root": str(data_root) if data_root else None,
                     "lm_eval": {"version": raw.get("lm_eval_version"), "transformers_version": raw.get("transformers_version"),
                                 **lm_files, "not_converted": skipped}}
    out["provenance"] = provenance(identity["sha256"], hashes)
    return out
