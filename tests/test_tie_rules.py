"""The credit of a tie, per task and protocol (issue 24): declared by the benchmark's task file beside
`headline_by_protocol` (sBLIMP under cuervo: 0.5, tiagoCuervo/slm_scaling src/slm/evaluate.py `summarize`,
`task == "sblimp"`), never keyed on a metric family; the user's --protocol-args beat it; runs recorded
before the change (cuervo carried `tie_value_by_family: {voice_averaged: 0.5}`) verify as they did.

The precedence tested here is the one docs/scoring.md states, most specific first:
  --protocol-args tie_value_by_family (the task's family) > --protocol-args tie_value >
  the task file's tie_value_by_protocol[preset] > the protocol's tie_value_by_family > its tie_value.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from slmeval.leaderboard.present import describe_protocol
from slmeval.leaderboard.registered import config_problems
from slmeval.results.verify import VerificationError, task_problems, task_ties, verify_run
from slmeval.scoring.protocol import PRESETS, Protocol, get_protocol
from slmeval.task_loader.files import TaskError
from slmeval.task_loader.registry import all_tasks, get_tasks, make_task

SBLIMP = {"cuervo": 0.5}          # tasks/sblimp/_template.yaml, transcribed


# -- the resolution, edge by edge -----------------------------------------------------------------

@pytest.mark.parametrize("preset, args, family, declared, expected", [
    # presets as shipped: the task file decides where it speaks for this preset, else the protocol
    ("cuervo", None, "voice_averaged", SBLIMP, 0.5),          # sBLIMP under cuervo
    ("cuervo", None, "voice_averaged", {}, 0.0),              # another voice_averaged task: the bug
    ("cuervo", None, "pairs", {}, 0.0),                       # StoryCloze under cuervo
    ("slmeval", None, "voice_averaged", SBLIMP, 0.5),         # the entry names cuervo; slmeval's own 0.5
    ("slamkit", None, "voice_averaged", {"slamkit": 0.0}, 0.0),
    # a customised protocol reads its preset's entry unless the user set the tie
    ("cuervo", {"score": "sum"}, "voice_averaged", SBLIMP, 0.5),
    ("cuervo", {"tie_value": "0.25"}, "voice_averaged", SBLIMP, 0.25),   # explicit tie_value wins ...
    ("cuervo", {"tie_value": "0"}, "voice_averaged", SBLIMP, 0.0),       # ... also when it equals the preset's
    ("slmeval", {"tie_value": "1"}, "pairs", {}, 1.0),
    # the user's per-family credit: for tasks of that family only, above their own tie_value
    ("cuervo", {"tie_value_by_family": "voice_averaged:1"}, "voice_averaged", SBLIMP, 1.0),
    ("cuervo", {"tie_value_by_family": "voice_averaged:1"}, "pairs", {}, 0.0),
    ("cuervo", {"tie_value_by_family": "pairs:1"}, "voice_averaged", SBLIMP, 0.5),   # other family: task file
    ("cuervo", {"tie_value": "0.25", "tie_value_by_family": "pairs:1"}, "pairs", {}, 1.0),
    ("cuervo", {"tie_value": "0.25", "tie_value_by_family": "pairs:1"}, "voice_averaged", SBLIMP, 0.25),
])
def test_tie_precedence(preset, args, family, declared, expected):
    assert get_protocol(preset, args).tie_value_for(family, declared) == expected


def test_a_plugin_preset_keyed_on_a_family_yields_to_the_task_file():
    """A preset's own `tie_value_by_family` (a plugin's; what cuervo carried before) is protocol level:
    the task file's entry for that preset is more specific."""
    plugin = Protocol("old_style", score="mean", start_token="eos", score_eos=False, tie_value=0.0,
                      tie_value_by_family={"voice_averaged": 0.5})
    assert plugin.tie_value_for("voice_averaged", {"old_style": 1.0}) == 1.0
    assert plugin.tie_value_for("voice_averaged", {}) == 0.5
    assert plugin.tie_value_for("pairs", {}) == 0.0


def test_presets_carry_no_family_rule_and_records_of_presets_are_unchanged():
    assert all(not p.tie_value_by_family for p in PRESETS.values())
    assert "overridden" not in PRESETS["slmeval"].to_dict()       # a preset's config.protocol as before
    custom = get_protocol("cuervo", {"tie_value": "0.5", "score": "sum"})
    assert custom.to_dict()["overridden"] == ["score", "tie_value"]
    with pytest.raises(ValueError, match="unknown field 'overridden'"):
        get_protocol("cuervo", {"overridden": "tie_value"})


# -- the task files -------------------------------------------------------------------------------

def test_the_bundled_sblimp_tasks_and_only_they_declare_a_tie_rule():
    """Inherited through `include:` (a scoring rule of the benchmark, unlike leaderboard / export / version)."""
    declared = {name: t.tie_value_by_protocol for name, t in all_tasks().items() if t.tie_value_by_protocol}
    assert declared == {"sblimp": SBLIMP, "sblimp_test": SBLIMP, "mini_sblimp": SBLIMP}
    assert all_tasks()["mini_sblimp"].to_dict()["tie_value_by_protocol"] == SBLIMP
    assert "tie_value_by_protocol" not in all_tasks()["mini_sstorycloze"].to_dict()   # record and fingerprint unchanged


@pytest.mark.parametrize("value, message", [
    ("{cuervo: 1.5}", r"field tie_value_by_protocol\.cuervo: expected the credit of a tie, a number in \[0, 1\], got 1\.5"),
    ("{cuervo: -0.1}", r"tie_value_by_protocol\.cuervo: .* got -0\.1"),
    ("{cuervo: half}", r"tie_value_by_protocol\.cuervo: .* got 'half'"),
    ("{cuervo: true}", r"tie_value_by_protocol\.cuervo: .* got True"),
    ("{cuervo: .nan}", r"tie_value_by_protocol\.cuervo: .* got nan"),
    ("{cuervo+custom: 0.5}", r"tie_value_by_protocol: 'cuervo\+custom' is not a protocol preset name"),
    ("[cuervo, 0.5]", r"field tie_value_by_protocol: expected dict"),
])
def test_a_bad_tie_rule_is_one_error_naming_file_and_field(tmp_path, value, message):
    (tmp_path / "bad.yaml").write_text(f"name: t_bad\nsource: units_jsonl\npath: ./u.jsonl\n"
                                       f"tie_value_by_protocol: {value}\n")
    (tmp_path / "good.yaml").write_text("name: t_good\nsource: units_jsonl\npath: ./u.jsonl\n")
    with pytest.raises(TaskError, match=message) as err:
        get_tasks(["t_bad"], [tmp_path])
    assert str(tmp_path / "bad.yaml") in str(err.value)
    assert get_tasks(["t_good"], [tmp_path])[0].tie_value_by_protocol == {}     # the other file still loads


def test_any_preset_name_is_accepted():
    """A task file may speak for a plugin's protocol that is not installed here (as headline_by_protocol may)."""
    cfg = make_task({"name": "t", "source": "units_jsonl", "path": "./u.jsonl",
                     "tie_value_by_protocol": {"someone_elses": 1, "cuervo": 0}}, "t.yaml")
    assert cfg.tie_value_by_protocol == {"someone_elses": 1.0, "cuervo": 0.0}


# -- records: verify, old and new ------------------------------------------------------------------

def _sample(i: str, pos: float, neg: float, correct: float, meta: dict) -> dict:
    # a mean score over 2 scored tokens: logprob = 2 * score
    return {"id": i, "positive_key": f"{i}+", "negative_key": f"{i}-", "positive_score": pos, "negative_score": neg,
            "positive_logprob": 2 * pos, "negative_logprob": 2 * neg, "positive_n": 2, "negative_n": 2,
            "correct": correct, "meta": meta}


def _old_cuervo_run(tie_voice: float, tie_pairs: float, *, record_tie: bool) -> tuple[dict, dict]:
    """A results.json as the evaluator wrote it before task files declared ties (docs/architecture.md's
    format, written out by hand): cuervo's protocol with `tie_value_by_family: {voice_averaged: 0.5}`,
    task configs without `tie_value_by_protocol`, `configs.<task>.tie_value` only when `record_tie`.
    Two tasks on the same four pairs (items 1 and 2, voices v1 and v2; a and d are exact ties)."""
    meta = [{"item": "1", "voice": "v1"}, {"item": "1", "voice": "v2"}, {"item": "2", "voice": "v1"},
            {"item": "2", "voice": "v2"}]
    sides = [(-1.0, -1.0), (-1.0, -2.0), (-3.0, -2.0), (-2.0, -2.0)]
    wins = [None, 1.0, 0.0, None]
    samples = {task: [_sample(i, p, n, tie if w is None else w, m)
                      for i, (p, n), w, m in zip("abcd", sides, wins, meta)]
               for task, tie in (("old_sblimp", tie_voice), ("old_cloze", tie_pairs))}
    # Hand arithmetic. old_sblimp, voice_averaged over items: credits (t, 1 | 0, t) with t = tie_voice;
    # item means (t+1)/2 and t/2; acc = their mean; stderr = |difference| / 2 (two items: std/sqrt(2)).
    t = tie_voice
    items = [(t + 1) / 2, t / 2]
    voice = [t, 1.0, 0.0, t]
    mean_v = sum(voice) / 4
    sblimp = {"acc": sum(items) / 2, "acc_stderr": abs(items[0] - items[1]) / 2,
              "acc_voice_pairs": mean_v,
              "acc_voice_pairs_stderr": (sum((v - mean_v) ** 2 for v in voice) / 3) ** 0.5 / 2,
              "acc_all_voices": 0.0, "acc_all_voices_stderr": 0.0, "n_minimal_pairs": 2, "n_pairs": 4}
    u = tie_pairs
    cloze_c = [u, 1.0, 0.0, u]
    mean_c = sum(cloze_c) / 4
    cloze = {"acc": mean_c, "acc_stderr": (sum((c - mean_c) ** 2 for c in cloze_c) / 3) ** 0.5 / 2, "n_pairs": 4}
    configs = {"old_sblimp": {"name": "old_sblimp", "source": "units_jsonl", "path": "./v.jsonl",
                              "family": "voice_averaged", "grouping": {"voice": None, "item": ["item"], "breakdown": []},
                              "headline": "acc", "headline_by_protocol": {}, "version": 1},
               "old_cloze": {"name": "old_cloze", "source": "units_jsonl", "path": "./v.jsonl", "family": "pairs",
                             "grouping": {"voice": None, "item": [], "breakdown": []}, "headline": "acc",
                             "headline_by_protocol": {}, "version": 1}}
    if record_tie:
        configs["old_sblimp"]["tie_value"], configs["old_cloze"]["tie_value"] = tie_voice, tie_pairs
    protocol = {"name": "cuervo", "score": "mean", "start_token": "eos", "score_eos": False, "tie_value": 0.0,
                "tie_value_by_family": {"voice_averaged": 0.5}, "logprob_dtype": "float32", "first_unit_scored": True}
    results = {"results": {"old_sblimp": sblimp, "old_cloze": cloze}, "breakdowns": {}, "configs": configs,
               "versions": {"old_sblimp": 1, "old_cloze": 1}, "n_samples": {"old_sblimp": 4, "old_cloze": 4},
               "config": {"protocol": protocol, "model_sha256": "ab" * 32},
               "provenance": {"model_sha256": "ab" * 32}}
    return results, samples


@pytest.mark.parametrize("record_tie", [True, False])
def test_a_run_recorded_before_task_files_declared_ties_verifies_as_before(record_tie):
    results, samples = _old_cuervo_run(0.5, 0.0, record_tie=record_tie)
    assert results["results"]["old_sblimp"]["acc"] == 0.5 and results["results"]["old_cloze"]["acc"] == 0.25
    verify_run(results, samples, source="old")
    assert task_ties(results) == {"old_sblimp": 0.5, "old_cloze": 0.0}
    # the half credit on ties of a voice_averaged task came from the recorded protocol, so it still holds;
    # a record whose tie gives 0 for them while its samples hold 0.5 does not verify
    forged = copy.deepcopy(results)
    if record_tie:
        forged["configs"]["old_sblimp"]["tie_value"] = 0.0
    else:
        forged["config"]["protocol"]["tie_value_by_family"] = {}
    with pytest.raises(VerificationError, match=r"samples_old_sblimp.jsonl:1 \(id 'a'\): correct = 0.5 but its "
                                                r"scores give 0.0"):
        verify_run(forged, samples, source="forged")


def test_a_run_older_still_without_tie_value_by_family_verifies():
    """Before tie_value_by_family (and logprob_dtype) existed: the protocol's tie_value for every task."""
    results, samples = _old_cuervo_run(0.5, 0.5, record_tie=False)
    protocol = results["config"]["protocol"]
    for key in ("tie_value_by_family", "logprob_dtype"):
        del protocol[key]
    protocol.update(name="slmeval", start_token="bos", tie_value=0.5)
    verify_run(results, samples, source="oldest")
    assert task_ties(results) == {"old_sblimp": 0.5, "old_cloze": 0.5}


def test_a_new_record_reads_the_task_files_rule_and_refuses_a_tie_it_does_not_give():
    """A run made now: cuervo without a family rule, sBLIMP's rule in its recorded config."""
    results, samples = _old_cuervo_run(0.5, 0.0, record_tie=True)
    results["config"]["protocol"]["tie_value_by_family"] = {}
    with pytest.raises(VerificationError, match=r"configs\.old_sblimp\.tie_value = 0\.5 but the recorded protocol "
                                                r"and task config give 0\.0"):
        verify_run(results, samples, source="new")           # a voice_averaged task with no rule of its own: 0
    results["configs"]["old_sblimp"]["tie_value_by_protocol"] = {"cuervo": 0.5}
    verify_run(results, samples, source="new")
    # the recorded credit is what the samples are checked against: 0 recorded, 0.5 in the samples
    wrong = copy.deepcopy(results)
    wrong["configs"]["old_sblimp"]["tie_value"] = 0.0
    problems = task_problems(wrong, "old_sblimp", samples["old_sblimp"], "s.jsonl")
    assert problems[0] == "configs.old_sblimp.tie_value = 0.0 but the recorded protocol and task config give 0.5"
    assert "s.jsonl:1 (id 'a'): correct = 0.5 but its scores give 0.0 under the recorded protocol" in problems
    # a user's explicit tie_value beats the task file's rule, and the record says so
    explicit = copy.deepcopy(results)
    explicit["config"]["protocol"].update(name="cuervo+custom", overridden=["tie_value"])
    with pytest.raises(VerificationError, match="tie_value = 0.5 but the recorded protocol and task config give 0.0"):
        verify_run(explicit, samples, source="explicit")


# -- the leaderboard: the words and the registered task --------------------------------------------

def test_the_leaderboard_describes_each_task_with_its_own_tie():
    results, _ = _old_cuervo_run(0.5, 0.0, record_tie=False)
    words = {t: describe_protocol(results["config"]["protocol"], tie) for t, tie in task_ties(results).items()}
    assert words["old_sblimp"].endswith("ties ½ credit") and words["old_cloze"].endswith("ties no credit")
    assert describe_protocol(PRESETS["cuervo"].to_dict()).endswith("ties no credit")


def _registered(name: str, family: str, ties: dict) -> dict:
    grouping = {"item": ["item"]} if family == "voice_averaged" else None
    return {name: make_task({"name": name, "source": "units_jsonl", "path": "./v.jsonl", "family": family,
                             "grouping": grouping, "tie_value_by_protocol": ties}, f"{name}.yaml")}


def test_the_board_compares_the_tie_a_run_used_with_its_registered_task():
    old, _ = _old_cuervo_run(0.5, 0.0, record_tie=True)
    for task in old["configs"]:       # the board's copy of the task configs, as the old run recorded them
        old["configs"][task].update(options={}, leaderboard={}, mini=False)
    registry = {**_registered("old_sblimp", "voice_averaged", SBLIMP), **_registered("old_cloze", "pairs", {})}
    assert config_problems(old, registry) == []          # an old sBLIMP run under cuervo: 0.5, as registered
    new = copy.deepcopy(old)
    new["config"]["protocol"]["tie_value_by_family"] = {}
    new["configs"]["old_sblimp"]["tie_value"] = 0.0       # a run whose task copy lost the rule
    assert config_problems(new, registry) == [
        "configs.old_sblimp: ties were credited 0.0 but the registered task 'old_sblimp' version 1 credits them 0.5 "
        "under protocol 'cuervo'"]


# -- a run end to end: the bundled sBLIMP template's rule, the header, the record, check -------------

def _tasks(tmp_path: Path) -> None:
    from slmeval.task_loader.registry import builtin_task_dir

    rows = [{"id": i, "positive": [1 + i, 2, 3], "negative": [1 + i, 2, 3] if i % 2 == 0 else [3, 2, 1 + i],
             "type": "t", "subtype": "s", "item": str(i), "voice": "v"} for i in range(6)]   # even ids: ties
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "sb.yaml").write_text(f"include: {builtin_task_dir() / 'sblimp' / '_template.yaml'}\n"
                                      "name: t_sb\nsource: units_jsonl\npath: ./pairs.jsonl\n")
    (tmp_path / "cl.yaml").write_text("name: t_cl\nsource: units_jsonl\npath: ./pairs.jsonl\n")


@pytest.mark.parametrize("args, header, ties", [
    ([], "tie=0.0, tie[t_sb]=0.5  ·", {"t_sb": 0.5, "t_cl": 0.0}),
    (["--protocol-args", "tie_value=1"], "tie=1.0  ·", {"t_sb": 1.0, "t_cl": 1.0}),   # explicit: beats the task file
])
def test_a_cuervo_run_scores_records_prints_and_checks_each_tasks_tie(tiny_llama_dir, tmp_path, args, header, ties):
    from typer.testing import CliRunner

    from slmeval.cli import app

    _tasks(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--model", str(tiny_llama_dir), "--tasks", "t_sb,t_cl", "--include-path",
                                      str(tmp_path), "--protocol", "cuervo", "--output", str(out), "--no-progress",
                                      *args])
    assert result.exit_code == 0, result.output
    assert header in result.output.replace("\n", "")
    results = json.loads((out / "results.json").read_text())
    assert {t: c["tie_value"] for t, c in results["configs"].items()} == ties == task_ties(results)
    for task, tie in ties.items():
        samples = [json.loads(x) for x in (out / f"samples_{task}.jsonl").read_text().splitlines()]
        assert [s["correct"] for s in samples if int(s["id"]) % 2 == 0] == [tie] * 3
    checked = CliRunner().invoke(app, ["check", "--results", str(out), "--baseline", str(out)])
    assert checked.exit_code == 0, checked.output


# -- the board's re-run rebuilds the protocol a submission recorded ---------------------------------

@pytest.mark.parametrize("preset, args", [("cuervo", None), ("cuervo", {"tie_value": "0"}),
                                          ("cuervo", {"score": "sum"}), ("slmeval", {"tie_value_by_family": "pairs:0"})])
def test_a_recorded_protocol_is_rebuilt_exactly(preset, args):
    from slmeval.leaderboard.reproduce import protocol_arguments

    record = get_protocol(preset, args).to_dict()
    base, rebuilt_args = protocol_arguments(record)
    assert get_protocol(base, rebuilt_args or None).to_dict() == record


def test_a_cuervo_run_recorded_before_task_files_declared_ties_is_rebuilt_with_its_tie_rule():
    from slmeval.leaderboard.reproduce import _scoring, protocol_arguments

    results, _ = _old_cuervo_run(0.5, 0.0, record_tie=False)
    record = results["config"]["protocol"]
    base, args = protocol_arguments(record)
    assert (base, args) == ("cuervo", {"tie_value_by_family": "voice_averaged:0.5"})
    rebuilt = get_protocol(base, args)
    # every task credits ties as the old run did: voice_averaged 0.5 (with or without a task rule), else 0
    assert [rebuilt.tie_value_for(f, d) for f, d in [("voice_averaged", SBLIMP), ("voice_averaged", {}),
                                                     ("pairs", {})]] == [0.5, 0.5, 0.0]
    assert _scoring(rebuilt.to_dict()) == _scoring(record)       # the re-run's protocol compares equal
