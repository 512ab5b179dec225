"""Issue 24: one RunSettings (CLI, file, keywords give the same run), run and sweep sharing their option
objects, families declaring what they compute (a mistyped headline named when the tasks load), and a
task file of the previous format still loading."""
from __future__ import annotations

import json
import logging
import typing
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

import slmeval
from _data_helpers import make_units_jsonl
from conftest import N_UNITS
from slmeval.cli import app
from slmeval.cli import options as opt
from slmeval.cli.run import run as run_command
from slmeval.cli.sweep import sweep as sweep_command
from slmeval.evaluator import check_families
from slmeval.task_loader.registry import TaskError, get_tasks
from slmeval.settings import RunSettings, SettingsError

TASK = "- {name: set_units, family: pairs, source: units_jsonl, path: units.jsonl}\n"
SHARED = ["tasks", "data_root", "tokenizer", "protocol", "protocol_args", "model_args", "batch_size", "device",
          "dtype", "include_path", "cache_dir", "no_cache", "allow_pickle", "resume", "progress", "settings_file"]


@pytest.fixture(scope="module")
def units_task(tmp_path_factory):
    root = tmp_path_factory.mktemp("set")
    make_units_jsonl(root / "units.jsonl", n_pairs=6, n_units=N_UNITS, seed=5)
    (root / "tasks").mkdir()
    (root / "tasks" / "t.yaml").write_text(TASK)
    return root


def test_run_and_sweep_share_their_option_objects():
    hints = {cmd.__name__: typing.get_type_hints(cmd, include_extras=True) for cmd in (run_command, sweep_command)}
    for name in SHARED:
        assert hints["run"][name] == hints["sweep"][name], name     # the same Annotated object from cli/options.py
        assert any(hints["run"][name] == getattr(opt, t) for t in dir(opt) if not t.startswith("_")), name
    click_app = get_command(app)
    params = {cmd: {p.name: p for p in click_app.commands[cmd].params} for cmd in ("run", "sweep")}
    for name in SHARED:   # what a user sees: spellings, defaults and help identical
        a, b = params["run"][name], params["sweep"][name]
        assert (a.opts, a.secondary_opts, a.default, a.help) == (b.opts, b.secondary_opts, b.default, b.help), name


def test_protocol_help_lists_the_registered_presets():
    from slmeval.scoring.protocol import PROTOCOLS

    help_text = {p.name: p for p in get_command(app).commands["run"].params}["protocol"].help
    assert all(name in help_text for name in PROTOCOLS.names()) and len(PROTOCOLS.names()) >= 3


def _config(results: dict) -> dict:
    return {k: v for k, v in results["config"].items() if k != "distributed"}


def test_cli_file_and_keywords_are_one_run(units_task, tiny_llama_dir, tmp_path):
    """The same options given on the command line, in a settings file and as keywords: the same recorded
    config, hence the same resume fingerprint (`_fingerprint(config, task config)`), and the same numbers."""
    from slmeval.evaluator import _fingerprint

    common = ["--model", str(tiny_llama_dir), "--tasks", "set_units", "--no-progress"]
    cli = CliRunner().invoke(app, ["run", *common, "--data-root", str(units_task), "--include-path",
                                   str(units_task / "tasks"), "--batch-size", "3", "--protocol", "slamkit",
                                   "--protocol-args", "score=sum", "--limit", "5", "--output", str(tmp_path / "cli")])
    assert cli.exit_code == 0, cli.output
    by_cli = json.loads((tmp_path / "cli" / "results.json").read_text())
    settings = RunSettings(data_root=units_task, include_path=[units_task / "tasks"], batch_size=3, protocol="slamkit",
                           protocol_args="score=sum", limit=5, progress=False, output=tmp_path / "file")
    settings.save(tmp_path / "settings.json")
    assert RunSettings.from_file(tmp_path / "settings.json").to_dict() == settings.to_dict()
    via_file = CliRunner().invoke(app, ["run", *common, "--settings", str(tmp_path / "settings.json")])
    assert via_file.exit_code == 0, via_file.output
    by_file = json.loads((tmp_path / "file" / "results.json").read_text())
    by_keywords = slmeval.evaluate(tiny_llama_dir, "set_units", data_root=str(units_task), batch_size=3,
                                   include_path=[str(units_task / "tasks")], protocol="slamkit",
                                   protocol_args={"score": "sum"}, limit=5, progress=False)
    by_object = slmeval.evaluate(tiny_llama_dir, "set_units", RunSettings.from_file(tmp_path / "settings.json"),
                                 output=tmp_path / "obj")
    task = get_tasks(["set_units"], [units_task / "tasks"])[0].to_dict()
    prints = {_fingerprint(_config(r), task) for r in (by_cli, by_file, by_keywords, by_object)}
    assert len(prints) == 1
    assert _config(by_cli)["batch_size"] == 3 and _config(by_cli)["limit"] == 5
    assert _config(by_cli)["protocol"]["score"] == "sum"
    assert by_cli["results"] == by_file["results"] == by_keywords["results"] == by_object["results"]
    assert by_cli["n_samples"] == {"set_units": 5}


def test_command_line_options_override_the_settings_file(units_task, tiny_llama_dir, tmp_path):
    RunSettings(data_root=units_task, include_path=[units_task / "tasks"], batch_size=3,
                output=tmp_path / "o").save(tmp_path / "s.json")
    out = CliRunner().invoke(app, ["run", "--model", str(tiny_llama_dir), "--tasks", "set_units", "--no-progress",
                                   "--settings", str(tmp_path / "s.json"), "--batch-size", "5"])
    assert out.exit_code == 0, out.output
    config = json.loads((tmp_path / "o" / "results.json").read_text())["config"]
    assert (config["batch_size"], config["data_root"]) == (5, str(units_task))   # CLI wins; the file fills the rest


@pytest.mark.parametrize("content, message", [
    ('{"batch_sise": 3}', r"unknown run setting\(s\) \['batch_sise'\]"),
    ('{"batch_size": "3"}', r"batch_size = '3': expected int"),
    ('{"resume": 1}', r"resume = 1: expected bool"),
    ('[1, 2]', r"expected a mapping of run settings, got list"),
    ('{"batch_size": 3', r"not a JSON settings file"),
])
def test_a_bad_settings_file_is_one_error_naming_it(tmp_path, content, message):
    path = tmp_path / "s.json"
    path.write_text(content)
    with pytest.raises(SettingsError, match=rf"{path}: .*{message}" if "unknown" not in message else message):
        RunSettings.from_file(path)
    out = CliRunner().invoke(app, ["run", "--tasks", "x", "--settings", str(path)])
    assert out.exit_code == 2 and "s.json" in out.output and "Traceback" not in out.output


def test_keywords_refuse_unknown_names():
    with pytest.raises(SettingsError, match=r"evaluate\(\): unknown run setting\(s\) \['batchsize'\]"):
        slmeval.evaluate("m", "t", batchsize=3)


# -- families declare what they compute: the headline is checked when the tasks load -------------

def _task(folder: Path, text: str) -> Path:
    (folder / "t.yaml").write_text("name: hl\nsource: units_jsonl\npath: ./u.jsonl\n" + text)
    return folder / "t.yaml"


@pytest.mark.parametrize("text, field, why", [
    ("headline: acc_macr\n", "headline", "not a metric it computes with this grouping"),
    ("headline_by_protocol: {cuervo: acc_macro}\n", "headline_by_protocol.cuervo",    # no breakdown: no acc_macro
     "not a metric it computes with this grouping"),
    ("grouping: {voice: speaker}\nheadline: acc_voice_std\n", "headline", "not a score to rank by"),   # a spread
    ("family: voice_averaged\ngrouping: {item: [id]}\nheadline: acc_stderr\n", "headline", "not a score to rank by"),
])
def test_a_mistyped_headline_fails_at_load_naming_file_and_field(tmp_path, text, field, why):
    path = _task(tmp_path, text)
    configs = get_tasks(["hl"], [tmp_path])          # the file itself is well-formed
    with pytest.raises(TaskError, match=rf"task 'hl' \({path}\): field {field}: '[a-z_]+' is {why}"):
        check_families(configs)
    # through the CLI: exit 2 before any model is looked at (the model path does not even exist)
    out = CliRunner().invoke(app, ["run", "--model", str(tmp_path / "no-model"), "--tasks", "hl",
                                   "--include-path", str(tmp_path)])
    assert out.exit_code == 2 and f"field {field}" in out.output and "no-model" not in out.output


def test_declared_metrics_are_what_the_families_compute(tmp_path):
    """The declarations are not a second truth: on data with every grouping part, each family returns
    exactly the metrics it declares (acc_in_vocab needs in-vocabulary words: present here)."""
    import pandas as pd

    from slmeval.metrics.families import METRIC_FAMILIES, compute_metrics
    from slmeval.task_loader.registry import Grouping

    rows = [{"correct": c, "voice": v, "item": i, "kind": k, "frequency_band": b, "positive_score": 0.0,
             "negative_score": 0.0} for i, (k, b) in enumerate([("a", "hi"), ("b", "oov"), ("a", "lo")])
            for v, c in (("v1", 1.0), ("v2", float(i % 2)))]
    df = pd.DataFrame(rows)
    full = Grouping(voice="voice", item=("item",), breakdown=("kind",))
    for family in ("pairs", "voice_averaged", "zerospeech_lexical"):
        spec = METRIC_FAMILIES.get(family).computes
        metrics, _ = compute_metrics(family, df, full)
        assert set(metrics) == set(spec.names(full)), family
        bare = Grouping(item=("item",)) if family != "pairs" else Grouping()
        metrics, _ = compute_metrics(family, df, bare)
        assert set(metrics) == set(spec.names(bare)), family


# -- a task file of the previous format -------------------------------------------------------------

def test_a_previous_format_task_file_loads_with_a_warning(tmp_path, caplog, tiny_llama_dir):
    """`family: storycloze` (the first format: per-voice metrics over the `speaker` column, hard-wired)
    reads as `family: pairs` + `grouping: {voice: speaker}`, with a deprecation warning; its numbers are
    the current spelling's."""
    rows = [{"id": str(i), "positive": [1 + i % 5, 2, 3], "negative": [3, 2, 1 + i % 4], "speaker": f"s{i % 2}"}
            for i in range(8)]
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    for folder in ("old", "new"):
        (tmp_path / folder / "u.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "old" / "t.yaml").write_text("name: legacy\nfamily: storycloze\nsource: units_jsonl\npath: ./u.jsonl\n"
                                             "version: 1\n")
    (tmp_path / "new" / "t.yaml").write_text("name: current\nfamily: pairs\ngrouping: {voice: speaker}\n"
                                             "source: units_jsonl\npath: ./u.jsonl\nversion: 1\n")
    with caplog.at_level(logging.WARNING, logger="slmeval.task_loader.registry"):
        (old,) = get_tasks(["legacy"], [tmp_path / "old"])
    assert (old.family, old.grouping.voice) == ("pairs", "speaker")
    assert any("family: storycloze` is the previous task-file format (deprecated)" in r.getMessage()
               and str(tmp_path / "old" / "t.yaml") in r.getMessage() for r in caplog.records)
    a = slmeval.evaluate(tiny_llama_dir, "legacy", include_path=[tmp_path / "old"], progress=False)
    b = slmeval.evaluate(tiny_llama_dir, "current", include_path=[tmp_path / "new"], progress=False)
    assert a["results"]["legacy"] == b["results"]["current"]
    assert a["results"]["legacy"]["n_voices"] == 2      # the per-voice numbers the old family gave


def test_previous_format_sblimp_family_reads_as_its_grouping(tmp_path, caplog):
    (tmp_path / "t.yaml").write_text("name: oldsb\nfamily: sblimp\nsource: units_jsonl\npath: ./u.jsonl\n")
    with caplog.at_level(logging.WARNING, logger="slmeval.task_loader.registry"):
        (cfg,) = get_tasks(["oldsb"], [tmp_path])
    assert (cfg.family, cfg.grouping.breakdown, cfg.grouping.item) == ("pairs", ("type",), ("type", "subtype", "item"))
    assert "deprecated" in caplog.text
