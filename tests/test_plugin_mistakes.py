"""Mistakes a newcomer makes when writing plugins and task files (docs/plugins.md): each one is a single
error naming the plugin (and where it came from) or the task file, raised before the scoring work when
it can be known then — never a traceback from inside slmeval, never numbers silently left out."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import slmeval
from _data_helpers import make_units_jsonl
from conftest import N_UNITS
from slmeval.task_loader.registry import TaskError

PLUGIN = '''
from slmeval.data import read_pairs
from slmeval.metrics.families import pair_metrics

def no_path():                          # forgot the path argument
    return []

def dicts(path):                        # returns plain dicts, not Pairs
    return [{"id": "1"}]

def raises(path):                       # a bug inside the plugin
    return {}["missing"]

def one_arg(df):                        # forgot the grouping argument
    return {}, {}

def dict_only(df, grouping):            # forgot the breakdowns
    return pair_metrics(df, grouping)[0]
'''
ENTRY_POINTS = """[slmeval.readers]
no_path = my_mistakes:no_path
dicts = my_mistakes:dicts
raises = my_mistakes:raises

[slmeval.metrics]
one_arg = my_mistakes:one_arg
dict_only = my_mistakes:dict_only
"""
TASKS = """
- {name: r_no_path, source: no_path, path: units.jsonl}
- {name: r_dicts, source: dicts, path: units.jsonl}
- {name: r_raises, source: raises, path: units.jsonl}
- {name: m_one_arg, source: units_jsonl, path: units.jsonl, family: one_arg}
- {name: m_dict_only, source: units_jsonl, path: units.jsonl, family: dict_only}
"""


def test_plugins_with_the_wrong_shape_are_named(tmp_path, tiny_llama_dir):
    # a real dist-info on the path of a fresh process: the registries load entry points once per process
    (tmp_path / "my_mistakes.py").write_text(PLUGIN)
    dist = tmp_path / "my_mistakes-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-mistakes\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "t.yaml").write_text(TASKS)
    make_units_jsonl(tmp_path / "units.jsonl", n_pairs=3, n_units=N_UNITS)
    script = textwrap.dedent(f"""
        import json, slmeval
        out = {{}}
        for task in ["r_no_path", "r_dicts", "r_raises", "m_one_arg", "m_dict_only"]:
            try:
                slmeval.evaluate({str(tiny_llama_dir)!r}, [task], data_root={str(tmp_path)!r},
                                 include_path=[{str(tmp_path / "tasks")!r}], progress=False)
                out[task] = "no error"
            except ValueError as err:          # PluginError, TaskError, DataLayoutError
                out[task] = type(err).__name__ + ": " + str(err)
        print(json.dumps(out))
    """)
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(tmp_path)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    errors = json.loads(done.stdout.splitlines()[-1])
    origin = "from entry point {0} = my_mistakes:{0} (my-mistakes 1.0)"
    assert errors["r_no_path"].startswith(f"PluginError: reader 'no_path' {origin.format('no_path')} cannot be "
                                          "called as fn(path: Path, **options) -> list[Pair]: too many positional")
    assert errors["r_dicts"] == ("DataLayoutError: reader 'dicts' (entry point dicts = my_mistakes:dicts "
                                 "(my-mistakes 1.0)) returned a list holding a dict; a reader returns a list of "
                                 "slmeval.data.Pair")
    assert errors["r_raises"] == (f"PluginError: reader 'raises' {origin.format('raises')} failed "
                                  f"({tmp_path / 'my_mistakes.py'}, line 12): KeyError: 'missing'")
    # a family's signature is checked before any scoring; its return value after
    assert errors["m_one_arg"].startswith(f"TaskError: task 'm_one_arg' ({tmp_path / 'tasks' / 't.yaml'}): "
                                          f"metric family 'one_arg' {origin.format('one_arg')} cannot be called "
                                          "as fn(df: pd.DataFrame, grouping: Grouping) -> (metrics, breakdowns)")
    assert errors["m_dict_only"] == ("ValueError: metric family 'dict_only' (entry point dict_only = "
                                     "my_mistakes:dict_only (my-mistakes 1.0)) returned dict; a metric family "
                                     "returns (metrics: dict, breakdowns: dict)")


@pytest.mark.parametrize("fields, message", [
    # a typo in the voice column: the per-voice numbers would vanish without a word
    ("grouping: {voice: speakr}", r"grouping names column\(s\) speakr that reader 'units_jsonl' does not "
                                  r"produce; its columns: ab, speaker"),
    ("grouping: {breakdown: [kind]}", r"grouping names column\(s\) kind that reader"),
    # a headline the family does not compute: the leaderboard and exports would look for it
    # (found when the tasks load, before the model: the family declares what it computes, issue 24)
    ("headline: acc_macro", r"field headline: 'acc_macro' is not a metric it computes with this grouping "
                            r"\(metric family 'pairs'\); a headline is one of: acc$"),
])
def test_task_file_mistakes_are_one_error_naming_the_file(tmp_path, tiny_llama_dir, fields, message):
    rows = [{"id": str(i), "positive": [1, 2, 3], "negative": [3, 2, 1], "speaker": "s", "ab": "a"} for i in range(2)]
    (tmp_path / "u.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "t.yaml").write_text(f"name: oops\nsource: units_jsonl\npath: ./u.jsonl\n{fields}\n")
    with pytest.raises(TaskError, match=rf"task 'oops' \(.*t\.yaml\): {message}"):
        slmeval.evaluate(tiny_llama_dir, ["oops"], include_path=[tmp_path], progress=False, output=tmp_path / "o")
    assert not (tmp_path / "o" / "results.json").exists()
