"""Re-deriving a run's numbers from its samples: a verified number is one we computed again.

A run's samples (`samples_<task>.jsonl`) hold, per pair, both log-probabilities, the number of scored
tokens, both protocol scores and the credit. From them and the run's recorded protocol and task
config, every published number follows: each sample's score (mean or sum of its log-probs), its
`correct` (the credit rule below), and every metric and breakdown (the task's metric family). The
evaluator computes its numbers through `pair_correct` and `metrics_from_samples` too, so a re-derivation
and an evaluation cannot drift apart. `leaderboard add` / `build` and `slmeval check` call
`verify_run` and refuse a run whose numbers do not follow from its samples.
"""
from __future__ import annotations

import math
from dataclasses import fields
from typing import Callable, Iterable

import pandas as pd

from slmeval.metrics.families import compute_metrics, pair_credit
from slmeval.task_loader.registry import Grouping
from slmeval.results.files import items_sha256, meta_sha256
from slmeval.results.samples import metric_frame
from slmeval.results.verify_arrays import samples_pass
from slmeval.scoring.protocol import Protocol, reduce_dtype, sequence_score

# Scores are re-derived from log-probs with one division; metrics from the same values through the
# same code. Both agree to the last bit in practice; the tolerance only absorbs summation order.
REL_TOL, ABS_TOL = 1e-9, 1e-12
MAX_SHOWN = 12
SAMPLE_FIELDS = ("id", "positive_key", "negative_key", "positive_score", "negative_score", "correct", "meta")
# Protocol fields newer than the first recorded runs; their defaults reproduce what those runs computed.
LATER_PROTOCOL_FIELDS = ("tie_value_by_family", "logprob_dtype", "overridden")
LM_EVAL = "lm-eval"    # config.protocol.name of `slmeval text` runs (lm-eval's multiple_choice scoring)


class VerificationError(ValueError):
    """A run whose recorded numbers do not follow from its samples (the message lists the differences)."""


def pair_correct(tie_value: float, pos_score: float, neg_score: float) -> float:
    """The credit of one pair of a task whose ties get `tie_value` (the task's, `Protocol.tie_value_for`)
    — the single rule the evaluator and every check use."""
    return pair_credit(pos_score, neg_score, tie_value)


def task_tie(record: object, config: dict, task: str) -> tuple[float, list[str]]:
    """(the tie credit to re-derive `task` with, what is wrong with the recorded one).

    The credit follows from the record as the evaluator resolved it: `Protocol.tie_value_for` on the
    recorded protocol, the task's recorded family and its `tie_value_by_protocol`. Where the run
    recorded the credit it used (`configs.<task>.tie_value`), the samples are checked against that, and
    a recorded credit the protocol and task config do not give is a problem. A run recorded before task
    files declared ties has no `tie_value_by_protocol`: its protocol's `tie_value_by_family` (cuervo's
    {voice_averaged: 0.5} then) gives what it computed; one older still has neither: its `tie_value`.
    """
    declared = config.get("tie_value_by_protocol") or {}
    if not isinstance(declared, dict) or not all(_finite(v) for v in declared.values()):
        return 0.0, [f"configs.{task}.tie_value_by_protocol = {declared!r}: expected protocol names mapped to credits"]
    derived = protocol_from_record(record).tie_value_for(config["family"], declared)
    if "tie_value" not in config:
        return derived, []
    recorded = config["tie_value"]
    if not _finite(recorded) or not 0.0 <= recorded <= 1.0:
        return derived, [f"configs.{task}.tie_value = {recorded!r}: expected a credit in [0, 1]"]
    if not _same(recorded, derived):
        return recorded, [f"configs.{task}.tie_value = {recorded!r} but the recorded protocol and task config give "
                          f"{derived!r}"]
    return recorded, []


def lm_eval_credit(sample: dict) -> float:
    """lm-eval's multiple_choice `acc`: argmax over the two choices, a tie going to the first choice
    (the positive is choice `meta.gold_index`)."""
    pos, neg = sample["positive_score"], sample["negative_score"]
    return 1.0 if pos > neg or (pos == neg and sample["meta"].get("gold_index") == 0) else 0.0


def lm_eval_extra_metrics(breakdowns: dict) -> dict:
    """BLiMP's group number as lm-eval reports it: the mean over its paradigms (breakdown `subtype`)."""
    if "subtype" not in breakdowns:
        return {}
    paradigms = breakdowns["subtype"].values()
    return {"acc_paradigm_mean": float(sum(v["acc"] for v in paradigms) / len(paradigms))}


def task_ties(results: dict) -> dict[str, float]:
    """Each task's tie credit in a run's results (`task_tie`); {} for lm-eval runs, whose ties go to
    the first choice."""
    record = (results.get("config") or {}).get("protocol")
    if is_lm_eval(record):
        return {}
    configs = results.get("configs") or {}
    return {task: task_tie(record, configs[task], task)[0] for task in results.get("results") or {}
            if isinstance(configs.get(task), dict) and isinstance(configs[task].get("family"), str)}


def credit_rule(protocol_record: object, tie_value: float | None) -> tuple[Callable[[dict], float], str, str]:
    """(credit of a sample, how a side's score derives from its log-prob: "mean" or "sum", the dtype that
    reduction ran in) for a recorded protocol — slmeval's (`Protocol`, a tie credited `tie_value`: the
    task's, `task_tie`) or lm-eval's (`slmeval text` runs, whose ties go to the first choice)."""
    if is_lm_eval(protocol_record):
        return lm_eval_credit, str(protocol_record.get("score", "sum")), "float64"
    protocol = protocol_from_record(protocol_record)
    return ((lambda s: pair_correct(tie_value, s["positive_score"], s["negative_score"])), protocol.score,
            reduce_dtype(protocol))


def is_lm_eval(protocol_record: object) -> bool:
    return isinstance(protocol_record, dict) and protocol_record.get("name") == LM_EVAL


def metric_rows(samples: Iterable[dict]) -> pd.DataFrame:
    """One row per pair, as metric families expect: the reader's meta columns, both scores, the credit."""
    samples = list(samples)
    return metric_frame([s["meta"] for s in samples], [s["positive_score"] for s in samples],
                        [s["negative_score"] for s in samples], [s["correct"] for s in samples])


def metrics_from_samples(family: str, grouping: Grouping, samples: list[dict]) -> tuple[dict, dict]:
    return compute_metrics(family, metric_rows(samples), grouping)


def protocol_from_record(record: object) -> Protocol:
    """The Protocol a results.json recorded under config.protocol. Every field must be there, except those
    added after runs were first recorded (a run without one computed what its default computes)."""
    names = [f.name for f in fields(Protocol)]
    required = [n for n in names if n not in LATER_PROTOCOL_FIELDS]
    if not isinstance(record, dict) or any(n not in record for n in required):
        missing = required if not isinstance(record, dict) else [n for n in required if n not in record]
        raise VerificationError(f"config.protocol lacks field(s) {missing}: the credit of each pair cannot be "
                                "re-derived")
    values = {n: record[n] for n in names if n in record}
    if "overridden" in values:   # the fields --protocol-args set (their tie beats a task file's)
        if not isinstance(values["overridden"], list) or not all(isinstance(v, str) for v in values["overridden"]):
            raise VerificationError(f"config.protocol.overridden = {values['overridden']!r}: expected a list of "
                                    "protocol field names")
        values["overridden"] = tuple(values["overridden"])
    return Protocol(**values)


def grouping_from_record(config: dict) -> Grouping:
    raw = config.get("grouping") or {}
    if not isinstance(raw, dict):
        raise VerificationError(f"configs.{config.get('name')}.grouping must be an object")
    return Grouping(voice=raw.get("voice"), item=tuple(raw.get("item") or ()), breakdown=tuple(raw.get("breakdown") or ()))


def _same(a: object, b: object) -> bool:
    """Recorded vs re-derived value: numbers within tolerance (NaN, written as null, equals NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    nan_like = lambda v: v is None or (isinstance(v, float) and math.isnan(v))  # noqa: E731
    if (nan_like(a) or number(a)) and (nan_like(b) or number(b)):
        if nan_like(a) or nan_like(b):
            return nan_like(a) and nan_like(b)
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return a == b


def _differences(recorded: dict, derived: dict, where: str) -> list[str]:
    out = []
    for key in sorted(set(recorded) | set(derived)):
        if key not in derived:
            out.append(f"{where}.{key} = {recorded[key]!r} is not a metric the samples give")
        elif key not in recorded:
            out.append(f"{where}.{key} is missing (the samples give {derived[key]!r})")
        elif not _same(recorded[key], derived[key]):
            out.append(f"{where}.{key} = {recorded[key]!r} but the samples give {derived[key]!r}")
    return out


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _side_problem(s: dict, side: str, score_rule: str) -> str | None:
    """What is wrong with one side's score fields, or None. The log-prob is always needed (a score is
    re-derived from it); the count of scored tokens whenever the protocol averages (`mean`), and then it
    must be a JSON integer >= 1 (123.0, 0, true are refused: each would make the check divide by
    something no run counted)."""
    if not _finite(s[f"{side}_score"]):
        return f"{side}_score must be a finite number, got {s[f'{side}_score']!r}"
    if f"{side}_logprob" not in s:
        return f"{side}_logprob is missing: the score cannot be re-derived without it"
    if not _finite(s[f"{side}_logprob"]):
        return f"{side}_logprob must be a finite number, got {s[f'{side}_logprob']!r}"
    n = s.get(f"{side}_n")
    if f"{side}_n" not in s and score_rule != "mean":
        return None      # a summed score needs no count (lm-eval's samples carry none)
    if f"{side}_n" not in s:
        return f"{side}_n is missing: a mean score cannot be re-derived without the number of scored tokens"
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        return f"{side}_n must be an integer >= 1 (the number of scored tokens), got {n!r}"
    return None


def _sample_problems(samples: list[dict], credit: Callable[[dict], float], score_rule: str, score_dtype: str,
                     where: str) -> list[str]:
    problems, seen = [], set()
    for line, s in enumerate(samples, 1):
        at = f"{where}:{line}"
        missing = [f for f in SAMPLE_FIELDS if f not in s]
        if missing:
            problems.append(f"{at}: missing field(s) {missing}")
            continue
        if not isinstance(s["meta"], dict):
            problems.append(f"{at}: field meta must be an object")
            continue
        if s["id"] in seen:
            problems.append(f"{at}: duplicate id {s['id']!r}")
        seen.add(s["id"])
        scores = []
        for side in ("positive", "negative"):
            side_problem = _side_problem(s, side, score_rule)
            if side_problem:     # a field the re-derivation needs is missing or malformed: an error, never a skip
                problems.append(f"{at} (id {s['id']!r}): {side_problem}")
                break
            score, logprob, n = s[f"{side}_score"], s[f"{side}_logprob"], s.get(f"{side}_n")
            scores.append(score)
            expected = sequence_score(logprob, n, score_rule, score_dtype) if score_rule == "mean" else logprob
            if not math.isclose(score, expected, rel_tol=REL_TOL, abs_tol=ABS_TOL):
                problems.append(f"{at} (id {s['id']!r}): {side}_score {score!r} is not the {score_rule} "
                                f"of {side}_logprob over {side}_n ({expected!r})")
        if len(scores) == 2:
            expected_credit = credit(s)
            if not _same(s["correct"], expected_credit):
                problems.append(f"{at} (id {s['id']!r}): correct = {s['correct']!r} but its scores give "
                                f"{expected_credit!r} under the recorded protocol")
    return problems


def task_problems(results: dict, task: str, samples: list[dict], where: str) -> list[str]:
    """Every way `results` (for `task`) differs from what `samples` give; [] when all of it follows."""
    config = (results.get("configs") or {}).get(task)
    if not isinstance(config, dict) or not isinstance(config.get("family"), str):
        return [f"configs.{task}.family is missing: the task's metrics cannot be re-derived"]
    if not samples:
        return [f"{where}: no samples"]
    record = (results.get("config") or {}).get("protocol")
    tie, problems = (None, []) if is_lm_eval(record) else task_tie(record, config, task)
    credit, score_rule, score_dtype = credit_rule(record, tie)
    problems += ([] if samples_pass(samples, tie, score_rule, score_dtype, REL_TOL, ABS_TOL)   # columns at once
                 else _sample_problems(samples, credit, score_rule, score_dtype, where))      # names each problem
    if problems:
        return problems
    try:
        metrics, breakdowns = metrics_from_samples(config["family"], grouping_from_record(config), samples)
    except (ValueError, KeyError) as err:
        return [f"{where}: the metrics cannot be re-derived from these samples ({err})"]
    if is_lm_eval(record):
        metrics.update(lm_eval_extra_metrics(breakdowns))
    problems += _differences((results.get("results") or {}).get(task) or {}, metrics, f"results.{task}")
    problems += _differences((results.get("breakdowns") or {}).get(task) or {}, breakdowns, f"breakdowns.{task}")
    if (results.get("n_samples") or {}).get(task) != len(samples):
        problems.append(f"n_samples.{task} = {(results.get('n_samples') or {}).get(task)!r} but {where} holds "
                        f"{len(samples)} samples")
    recorded = ((results.get("provenance") or {}).get("task_hashes") or {}).get(task) or {}
    derived = {"items_sha256": items_sha256((str(s["id"]), str(s["positive_key"]), str(s["negative_key"]))
                                            for s in samples),
               "meta_sha256": meta_sha256((str(s["id"]), s["meta"]) for s in samples)}
    for name, value in derived.items():   # items_sha256 is required where it matters (leaderboard schema);
        if recorded.get(name) is not None and recorded[name] != value:   # meta_sha256 is absent in older runs
            what = "items" if name == "items_sha256" else "item metadata (meta)"
            problems.append(f"provenance.task_hashes.{task}.{name} does not match the {what} of {where}")
    return problems


def provenance_problems(results: dict) -> list[str]:
    """Fields recorded twice must agree: the model hash (config.model_sha256, which a speech run's
    evaluator always writes, vs provenance.model_sha256) and the Hub commit (config.hub vs
    provenance.model_hub) — an edit of one copy alone is a forgery, not a provenance."""
    config, prov = results.get("config") or {}, results.get("provenance") or {}
    if not isinstance(config, dict) or not isinstance(prov, dict):
        return ["config and provenance must be objects"]
    problems = []
    speech = not is_lm_eval(config.get("protocol"))
    if speech and "model_sha256" not in config:
        problems.append("config.model_sha256 is missing (a speech run records the model hash in config and "
                        "provenance)")
    elif "model_sha256" in config and config["model_sha256"] != prov.get("model_sha256"):
        problems.append(f"config.model_sha256 {config['model_sha256']!r} differs from provenance.model_sha256 "
                        f"{prov.get('model_sha256')!r}")
    if "hub" in config and "model_hub" in prov and config["hub"] != prov["model_hub"]:
        problems.append(f"config.hub {config['hub']!r} differs from provenance.model_hub {prov['model_hub']!r}")
    return problems


def verify_run(results: dict, samples: dict[str, list[dict]], *, source: str,
               sample_sources: dict[str, str] | None = None) -> None:
    """Raise VerificationError (naming `source` and listing the differences) unless every task's numbers
    in `results` follow from its samples."""
    try:
        credit_rule((results.get("config") or {}).get("protocol"), None)
    except VerificationError as err:
        raise VerificationError(f"{source}: {err}") from None
    problems: list[str] = provenance_problems(results)
    for task in (results.get("results") or {}):
        where = (sample_sources or {}).get(task, f"samples_{task}.jsonl")
        if task not in samples:
            problems.append(f"{where}: missing (a verified number needs its samples)")
            continue
        problems += task_problems(results, task, samples[task], where)
    if problems:
        shown = problems[:MAX_SHOWN] + ([f"... and {len(problems) - MAX_SHOWN} more"] if len(problems) > MAX_SHOWN else [])
        raise VerificationError(f"{source}: the recorded numbers do not follow from the samples:\n  "
                                + "\n  ".join(shown))
