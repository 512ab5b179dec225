"""Task registry: built-ins, include paths (YAML and Python), entry points, and its errors."""
from __future__ import annotations

import sys
import textwrap

import pytest

from slmeval.task_loader.registry import TaskError, all_tasks, get_tasks

YAML_TASK = """
name: my_pairs
family: pairs
source: units_jsonl
path: pairs.jsonl
description: a third-party task
how_to_get: make it yourself
"""


def test_builtin_tasks_are_registered():
    tasks = all_tasks()
    for name in ("sblimp", "sblimp_test", "sstorycloze", "tstorycloze"):
        assert name in tasks and not tasks[name].mini
    assert tasks["sblimp_test"].options == {"split": "test"}


def test_include_path_yaml_and_python(tmp_path):
    (tmp_path / "mine.yaml").write_text(YAML_TASK)
    (tmp_path / "more.py").write_text(textwrap.dedent("""
        TASKS = [dict(name=f"py_task_{i}", family="storycloze", source="storycloze", path=f"d{i}") for i in range(2)]
    """))
    tasks = all_tasks([tmp_path])
    assert tasks["my_pairs"].source == "units_jsonl" and tasks["py_task_1"].path == "d1"
    assert tasks["my_pairs"].resolve_path("/data").as_posix() == "/data/pairs.jsonl"
    with pytest.raises(TaskError, match="(?s)relative to --data-root.*make it yourself"):
        tasks["my_pairs"].resolve_path(None)


def test_entry_point_tasks(tmp_path, monkeypatch):
    # A real installed distribution (a dist-info on sys.path) advertising the slmeval.tasks group.
    pkg = tmp_path / "thirdparty_tasks.py"
    pkg.write_text("def tasks():\n    return [dict(name='ep_task', family='pairs', source='units_jsonl', path='x.jsonl')]\n")
    dist = tmp_path / "thirdparty_tasks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-tasks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[slmeval.tasks]\nmine = thirdparty_tasks:tasks\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "ep_task" in all_tasks()
    sys.modules.pop("thirdparty_tasks", None)


def test_registry_errors(tmp_path):
    with pytest.raises(TaskError, match="unknown task.*nope.*Registered"):
        get_tasks(["nope"])
    (tmp_path / "dup.yaml").write_text(YAML_TASK.replace("my_pairs", "sblimp"))
    with pytest.raises(TaskError, match=r"(?s)'sblimp' is defined twice: .*tasks/sblimp/sblimp.yaml and .*dup.yaml"):
        get_tasks(["sblimp"], [tmp_path])
    assert get_tasks(["sstorycloze"], [tmp_path])[0].name == "sstorycloze"   # the clash blocks only that name
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yaml").write_text("name: x\nfamily: pairs\n")
    with pytest.raises(TaskError, match=r"(?s)'x' cannot be used: .*x.yaml: task is missing required field\(s\) \['source', 'path'\]"):
        get_tasks(["x"], [bad])
