"""lm-eval's per-item records -> slmeval's pair samples, metrics and task hashes.

A two-choice `multiple_choice` item is a likelihood pair: the positive is the gold choice, the
negative the other one; each side's score is lm-eval's summed log-likelihood of the choice given the
context. `correct` is lm-eval's own per-item `acc` (argmax over the choices: a tie goes to the first
choice), so slmeval's accuracy equals lm-eval's.
"""
from __future__ import annotations

import hashlib
import json

import pandas as pd

from slmeval.metrics.families import compute_metrics
from slmeval.task_loader.registry import Grouping
from slmeval.results.files import data_sha256, items_sha256, meta_sha256
from slmeval.text.paradigms import PARADIGM_TYPE, PREFIX
from slmeval.results.verify import lm_eval_extra_metrics


class ConversionError(ValueError):
    """lm-eval output that is not a set of two-choice likelihood items."""


def leaf_tasks(name: str, group_subtasks: dict[str, list[str]]) -> list[str]:
    """Every leaf task under `name` (itself when it is a task), in lm-eval's order."""
    if name not in group_subtasks:
        return [name]
    return [leaf for child in group_subtasks[name] for leaf in leaf_tasks(child, group_subtasks)]


def pair_sample(leaf: str, record: dict) -> dict:
    """One slmeval sample from one lm-eval sample record of a two-choice task."""
    args = record.get("arguments")
    resps = record.get("filtered_resps")
    if isinstance(args, dict):   # as EvaluationTracker writes them: {"gen_args_i": {"arg_0", "arg_1"}}
        args = [[a["arg_0"], a["arg_1"]] for a in args.values()]
    if not isinstance(args, list) or len(args) != 2 or not isinstance(resps, list) or len(resps) != 2:
        raise ConversionError(f"task {leaf!r}, doc {record.get('doc_id')}: expected 2 choices with a "
                              f"log-likelihood each (a two-choice multiple_choice task), got {args!r}")
    target = record["target"]
    gold = int(target) if str(target).lstrip("-").isdigit() else [a[1].strip() for a in args].index(str(target).strip())
    if gold not in (0, 1):
        raise ConversionError(f"task {leaf!r}, doc {record.get('doc_id')}: gold index {gold} is not 0 or 1")
    context = args[0][0]
    pos, neg = args[gold][1], args[1 - gold][1]
    pos_ll, neg_ll = float(resps[gold][0]), float(resps[1 - gold][0])
    doc = record.get("doc") or {}
    paradigm = leaf[len(PREFIX) + 1:] if leaf.startswith(PREFIX + "_") else None
    meta = {"lm_eval_task": leaf, "doc_id": record["doc_id"], "doc_hash": record.get("doc_hash"),
            "gold_index": gold}
    if paradigm in PARADIGM_TYPE:
        meta.update(type=PARADIGM_TYPE[paradigm], subtype=paradigm, item=str(doc.get("pairID", record["doc_id"])))
    content = hashlib.sha256(json.dumps([context, pos, neg], ensure_ascii=False).encode()).hexdigest()
    return {"id": f"{leaf}:{record['doc_id']}", "positive_key": pos.strip(), "negative_key": neg.strip(),
            "context": context, "positive_logprob": pos_ll, "negative_logprob": neg_ll,
            "positive_score": pos_ll, "negative_score": neg_ll, "correct": float(record["acc"]),
            "content_sha256": content, "meta": meta}


def task_run(name: str, breakdown: list[str], samples_by_leaf: dict[str, list[dict]],
             group_subtasks: dict[str, list[str]]) -> tuple[dict, dict, list[dict], dict]:
    """(metrics, breakdowns, samples, hashes) of one requested task or group; `breakdown`: the meta
    columns to tabulate accuracy by (BLiMP: type, then paradigm; acc_macro is over the first)."""
    samples = []
    for leaf in leaf_tasks(name, group_subtasks):
        if leaf not in samples_by_leaf:
            raise ConversionError(f"task {name!r}: lm-eval returned no samples for its sub-task {leaf!r}")
        samples += [pair_sample(leaf, r) for r in sorted(samples_by_leaf[leaf], key=lambda r: r["doc_id"])]
    if not samples:
        raise ConversionError(f"task {name!r}: no items")
    rows = pd.DataFrame([{**s["meta"], "correct": s["correct"]} for s in samples])
    metrics, breakdowns = compute_metrics("pairs", rows, Grouping(breakdown=tuple(breakdown)))
    # BLiMP: also the mean over the 67 paradigms, lm-eval's group number (one definition, re-derived by
    # slmeval.results.verify when the run is checked or submitted)
    metrics.update(lm_eval_extra_metrics(breakdowns))
    hashes = {"items_sha256": items_sha256((s["id"], s["positive_key"], s["negative_key"]) for s in samples),
              "data_sha256": data_sha256(s["content_sha256"] for s in samples),
              "meta_sha256": meta_sha256((s["id"], s["meta"]) for s in samples)}
    return metrics, breakdowns, samples, hashes
