"""A folder of results files -> runs table rows (the `slmeval fit DIR --metadata META` input).

Reads slmeval `results.json` files (speech runs from `slmeval run`, text runs from `slmeval text`)
and lm-eval's own `results_<timestamp>.json` files side by side:

* one run per run name (`--name-from`). A run with several files (a rerun leaves a second
  timestamped lm-eval file; `slmeval text` writes its results.json beside lm-eval's) is read from
  one of them: the slmeval results.json if there is one, else the newest lm-eval file; the choice
  is logged and returned as a note. Files of different models under one run name are an error.
* metric columns are "<task>/<metric>". A text twin's task is named by its speech twin (text_blimp
  -> sblimp, text_storycloze -> sstorycloze, text_tstorycloze -> tstorycloze), so one column holds
  both modalities and the `modality` column tells them apart (γq per modality, their ratio).
* the modality of a run missing from the metadata comes from the results file (`slmeval text`
  writes "text"; lm-eval files are text runs; other slmeval runs are speech).
* one task read at two versions, or over two different item lists (e.g. a `--limit` partial run
  beside a full one), is an error naming both files: their numbers are not comparable. Partial runs
  that agree with each other are read, with a note naming them.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from slmeval.io import parse_kv
from slmeval.scaling.tables import RunsTableError, canonical_columns, read_table

log = logging.getLogger(__name__)
_TIMESTAMP = re.compile(r"_(\d{4}-\d{2}-\d{2}T[\d\-.]+)\.json$")


@dataclass
class ResultsFile:
    path: Path
    data: dict
    kind: str                       # "slmeval" | "lm-eval"
    name: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def stamp(self) -> str:
        """Sort key, newest last: lm-eval's file-name timestamp, else the recorded date, else mtime."""
        match = _TIMESTAMP.search(self.path.name)
        if match:
            return match.group(1)
        date = self.data.get("date")
        if isinstance(date, (int, float)):
            return datetime.fromtimestamp(date).isoformat().replace(":", "-")
        prov = (self.data.get("provenance") or {}).get("date")
        if isinstance(prov, str):
            return prov.replace(":", "-")
        return datetime.fromtimestamp(self.path.stat().st_mtime).isoformat().replace(":", "-")


def _kind(data: dict) -> str:
    if "lm_eval_version" in data or "n-samples" in data or "group_subtasks" in data:
        return "lm-eval"
    results = data.get("results") or {}
    if any("," in str(k) for m in results.values() if isinstance(m, dict) for k in m):
        return "lm-eval"
    return "slmeval"


def model_identity(data: dict, kind: str) -> tuple[str | None, str | None]:
    """(model name or path, revision) recorded in a results file; lm-eval keeps model_args as a dict
    (current CLI) or a "k=v,..." string (older versions / the Python API) and config.model = backend."""
    cfg = data.get("config") or {}
    args = cfg.get("model_args")
    if isinstance(args, str):
        try:
            args = parse_kv(args, "model_args")
        except ValueError:      # not key=value: no model name to take from it
            args = {}
    args = args if isinstance(args, dict) else {}
    model = args.get("pretrained") or (cfg.get("model") if kind == "slmeval" else None)
    revision = args.get("revision") or (cfg.get("revision") if kind == "slmeval" else None)
    return (str(model) if model else None), (str(revision) if revision and revision != "main" else None)


def run_name_for(path: Path, root: Path, data: dict, rule: str, kind: str) -> str:
    """`dir`: the folder holding the file (relative to the root); `model`: the basename of the model
    (lm-eval's pretrained=, slmeval's config.model) with "@<revision>" when one was asked for (Pythia
    `stepN` checkpoints); anything else is a regular expression whose first group is taken from the
    file's path relative to the root."""
    rel = path.relative_to(root)
    if rule == "dir":
        return rel.parent.as_posix() if rel.parent != Path(".") else path.stem
    if rule == "model":
        model, revision = model_identity(data, kind)
        if not model:
            raise RunsTableError(f"{path}: --name-from model but config.model / model_args pretrained= is missing")
        return Path(model.rstrip("/")).name + (f"@{revision}" if revision else "")
    match = re.search(rule, rel.as_posix())
    if not match or not match.groups():
        raise RunsTableError(f"{path}: --name-from pattern {rule!r} has no (group) match in {rel.as_posix()!r}")
    return match.group(1)


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunsTableError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise RunsTableError(f"{path}: no 'results' object (expected slmeval results.json or lm-eval output)")
    return data


def _pick(name: str, files: list[ResultsFile]) -> ResultsFile:
    """One file per run (see the module docstring)."""
    identities = {model_identity(f.data, f.kind) for f in files}
    identities.discard((None, None))
    if len(identities) > 1:
        shown = ", ".join(f"{f.path} ({model_identity(f.data, f.kind)[0]})" for f in files[:4])
        raise RunsTableError(f"run name {name!r} is taken by files of different models: {shown}; "
                             "use --name-from to tell runs apart")
    slm = [f for f in files if f.kind == "slmeval"]
    if len(slm) > 1:
        raise RunsTableError(f"{slm[1].path}: run name {name!r} already taken by {slm[0].path}; "
                             "use --name-from to tell runs apart")
    chosen = slm[0] if slm else max(files, key=lambda f: f.stamp)
    if len(files) > 1:
        ignored = sorted(str(f.path) for f in files if f is not chosen)
        why = "slmeval's results.json" if slm else "the newest lm-eval results file"
        chosen.notes.append(f"run {name!r}: {len(files)} results files; read {chosen.path} ({why}), "
                            f"ignored {ignored}")
        log.warning(chosen.notes[-1])
    return chosen


def _metrics(f: ResultsFile) -> tuple[dict[str, float], dict[str, str]]:
    """({column: value}, {source task: column task}) with twins named by their speech task."""
    from slmeval.text.twins import metrics_from_lm_eval, twin_table

    twins = {k: v["twin"] for k, v in twin_table().items()}
    if f.kind == "lm-eval":
        per_task = metrics_from_lm_eval(f.data)
    else:
        per_task = {}
        for task, metrics in f.data["results"].items():
            if isinstance(metrics, dict):
                per_task[task] = {m: float(v) for m, v in metrics.items() if "stderr" not in m
                                  and not m.startswith("n_") and isinstance(v, (int, float))
                                  and not isinstance(v, bool)}
        for task, cfg in (f.data.get("configs") or {}).items():
            if isinstance(cfg, dict) and cfg.get("twin"):
                twins[task] = cfg["twin"]
    out, renamed = {}, {}
    for task, metrics in per_task.items():
        column_task = twins.get(task, task)
        if column_task != task:
            renamed[task] = column_task
        out.update({f"{column_task}/{m}": v for m, v in metrics.items()})
    return out, renamed


def results_metrics(data: dict, path: Path) -> dict[str, float]:
    """The metric columns of one slmeval results.json, named as `slmeval fit DIR` names them."""
    return _metrics(ResultsFile(Path(path), data, "slmeval"))[0]


def _task_keys(f: ResultsFile) -> dict[str, tuple[str, str | None]]:
    """{task: (version, item-list hash or None)} for the compatibility check. The hash is tagged with
    its scheme: slmeval's items_sha256 and lm-eval's task_hashes only compare with their own kind."""
    versions = f.data.get("versions") or {}
    keys = {}
    if f.kind == "slmeval":
        hashes = (f.data.get("provenance") or {}).get("task_hashes") or {}
        for task in f.data["results"]:
            items = (hashes.get(task) or {}).get("items_sha256")
            keys[task] = (str(versions.get(task)), f"slmeval:{items}" if items else None)
    else:
        from slmeval.text.convert import leaf_tasks
        from slmeval.text.twins import top_level_tasks

        subtasks, lm_hashes = f.data.get("group_subtasks") or {}, f.data.get("task_hashes") or {}
        for task in top_level_tasks(f.data):
            leaves = leaf_tasks(task, subtasks)
            items = ("lm-eval:" + "|".join(str(lm_hashes[x]) for x in leaves)) if all(x in lm_hashes for x in leaves) else None
            keys[task] = (str(versions.get(task)), items)
    return {t: k for t, k in keys.items() if k[0] != "None" or k[1] is not None}


def check_compatible(files: list[ResultsFile]) -> None:
    seen: dict[str, tuple[str, Path]] = {}
    items_seen: dict[tuple[str, str], tuple[str, Path]] = {}
    for f in files:
        for task, (version, items) in _task_keys(f).items():
            v0, p0 = seen.setdefault(task, (version, f.path))
            if version != v0:
                raise RunsTableError(f"task {task!r} appears at incompatible versions: {v0} in {p0}, {version} in "
                                     f"{f.path}; fit runs of one task version (rerun the older ones)")
            if not items:
                continue
            scheme = items.split(":", 1)[0]
            i0, p0 = items_seen.setdefault((task, scheme), (items, f.path))
            if items != i0:
                raise RunsTableError(f"task {task!r} was scored on different item lists in {p0} and {f.path} "
                                     "(a --limit partial run, another split or another data release): "
                                     "their accuracies are not comparable")


def read_results_folder(folder: str | Path, metadata: str | Path, name_from: str = "dir") -> pd.DataFrame:
    """Join the results files under `folder` with the metadata table by run name; notes on which
    file was read for each run are in `df.attrs["notes"]`."""
    folder = Path(folder)
    paths = sorted(p for p in folder.rglob("*.json") if p.name == "results.json" or p.name.startswith("results"))
    if not paths:
        raise RunsTableError(f"{folder}: no results.json / results*.json files found")
    files = []
    for path in paths:
        data = _read(path)
        files.append(ResultsFile(path, data, _kind(data)))
    covered = set()   # lm-eval files that an slmeval text results.json beside them was made from
    for f in files:
        lm = ((f.data.get("config") or {}).get("lm_eval") or {}) if f.kind == "slmeval" else {}
        if lm.get("results_file"):
            covered.add(f.path.parent / lm["results_file"])
    groups: dict[str, list[ResultsFile]] = {}
    for f in files:
        f.name = run_name_for(f.path, folder, f.data, name_from, f.kind)
        groups.setdefault(f.name, []).append(f)
    chosen, notes, renamed = [], [], {}
    for name, group in groups.items():
        pick = _pick(name, [f for f in group if f.path not in covered] or group)
        chosen.append(pick)
        notes += pick.notes
    check_compatible(chosen)
    # --limit runs all of one size pass check_compatible (same item lists): say so, never silently
    partial = sorted(f"{f.name} (--limit {lim})" for f in chosen
                     if (lim := (f.data.get("config") or {}).get("limit")) is not None)
    if partial:
        notes.append(f"{len(partial)} partial run(s), scored on the first items of each task only (the "
                     f"leaderboard refuses them): {', '.join(partial[:10])}" + (" ..." if len(partial) > 10 else ""))
    rows = []
    for f in chosen:
        metrics, names = _metrics(f)
        renamed.update(names)
        modality = (f.data.get("config") or {}).get("modality") or ("text" if f.kind == "lm-eval" else "speech")
        rows.append({"name": f.name, "_modality": modality, **metrics})
    if renamed:
        notes.append("text twins read under their speech task's column: "
                     + ", ".join(f"{a} -> {b}" for a, b in sorted(renamed.items())))
    meta = canonical_columns(read_table(metadata), metadata)
    if "name" not in meta:
        raise RunsTableError(f"{metadata}: the metadata table needs a 'name' column (run name) to join on")
    meta["name"] = meta["name"].astype(str)
    unknown = sorted({r["name"] for r in rows} - set(meta["name"]))
    if unknown:
        raise RunsTableError(f"{metadata}: no metadata row for run(s) {unknown[:10]} found in {folder} "
                             f"(metadata names: {sorted(meta['name'])[:10]})")
    res = pd.DataFrame(rows)
    clash = (set(res.columns) & set(meta.columns)) - {"name"}
    if clash:
        raise RunsTableError(f"{metadata}: columns {sorted(clash)} appear in both the metadata and the results")
    df = meta.merge(res, on="name", how="left")
    hint = df.pop("_modality")
    df["modality"] = df["modality"].fillna(hint) if "modality" in df else hint.fillna("speech")
    df.attrs["notes"] = notes
    return df
