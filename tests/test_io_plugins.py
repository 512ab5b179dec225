"""slmeval.io (atomic writes, JSONL, key=value) and slmeval.plugins (the one registry mechanism)."""
from __future__ import annotations

import os
import stat
import sys

import pytest

from slmeval.io import atomic_path, atomic_write_text, parse_kv, read_jsonl, write_json, write_jsonl
from slmeval.plugins import PluginError, Registry


def test_atomic_write_respects_umask_and_replaces(tmp_path):
    old = os.umask(0o027)
    try:
        target = tmp_path / "sub" / "a.txt"
        atomic_write_text(target, "one\r\n")
        assert target.read_bytes() == b"one\r\n"           # written exactly as given
        assert stat.S_IMODE(target.stat().st_mode) == 0o640  # 0666 & ~umask, not mkstemp's 0600
        atomic_write_text(target, "two")
        assert target.read_text() == "two"
    finally:
        os.umask(old)
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]   # no temp files left


def test_atomic_path_failure_keeps_old_file(tmp_path):
    target = tmp_path / "x.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_jsonl_round_trip_and_errors(tmp_path):
    path = tmp_path / "s.jsonl"
    write_jsonl(path, [{"a": 1.0, "b": float("nan")}, {"a": 2}])
    assert read_jsonl(path) == [{"a": 1.0, "b": None}, {"a": 2}]
    path.write_text('{"a": 1}\n\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"s\.jsonl:3: expected a JSON object"):
        read_jsonl(path)
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(ValueError, match=r"s\.jsonl:2: not valid JSON"):
        read_jsonl(path)


def test_parse_kv():
    assert parse_kv(" a=1, b = x=y ,,", "--opt") == {"a": "1", "b": "x=y"}
    assert parse_kv(None, "--opt") == {}
    with pytest.raises(ValueError, match="--opt: 'b' is not key=value"):
        parse_kv("a=1,b", "--opt")
    with pytest.raises(KeyError, match="key 'a' given twice"):
        parse_kv("a=1,a=2", "--opt", error=KeyError)


def _fake_distribution(root, name, group, lines):
    dist = root / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{group}]\n" + "\n".join(lines) + "\n")


def test_registry_decorator_entry_points_and_errors(tmp_path, monkeypatch):
    reg: Registry = Registry("widget", group="slmeval_test.widgets")

    @reg.register("builtin")
    def builtin():
        return "b"

    (tmp_path / "widget_plugin.py").write_text("def make():\n    return 'third party'\n")
    _fake_distribution(tmp_path, "widget_plugin", "slmeval_test.widgets",
                       ["extra = widget_plugin:make", "broken = widget_plugin_missing:make",
                        "builtin = widget_plugin:make"])
    monkeypatch.syspath_prepend(str(tmp_path))
    assert reg.get("extra")() == "third party"
    assert "entry point extra = widget_plugin:make (widget_plugin 1.0)" == reg.origin("extra")
    assert reg.names() == ["broken", "builtin", "extra"]
    broken = {e.name: e for e in reg.entries()}["broken"]
    assert broken.obj is None and "ModuleNotFoundError" in broken.error
    with pytest.raises(PluginError, match="widget 'broken' from entry point broken .* cannot be used"):
        reg.get("broken")
    # A plugin claiming a built-in's name is ambiguous: unusable, with both origins named.
    with pytest.raises(PluginError, match="widget 'builtin' is registered twice: by test_io_plugins and by "
                                          "entry point builtin = widget_plugin:make"):
        reg.get("builtin")
    with pytest.raises(PluginError, match="unknown widget 'nope'; registered: broken, builtin, extra"):
        reg.get("nope")
    with pytest.raises(PluginError, match="registered twice"):
        reg.register("extra", lambda: None)
    sys.modules.pop("widget_plugin", None)


def test_entry_summary_is_the_plugins_own_description():
    reg: Registry = Registry("gadget", group="slmeval_test.gadgets")

    class Base:
        """Base class text that must not describe subclasses."""

    @reg.register("plain")
    class Plain(Base):
        pass

    @reg.register("documented")
    class Documented(Base):
        """Reads the thing.

        More detail."""

    @reg.register("fn")
    def fn():
        """A function plugin."""

    reg.register("described", type("Kind", (), {"description": "set explicitly"})())
    reg.register("instance", Documented())          # an instance: its class's docstring is not its own
    summaries = {e.name: e.summary for e in reg.entries()}
    assert summaries == {"plain": "", "documented": "Reads the thing.", "fn": "A function plugin.",
                         "described": "set explicitly", "instance": ""}


def test_protocol_presets_are_plugins(tmp_path):
    # a real dist-info on sys.path of a fresh process: the registry loads entry points once per process
    import subprocess
    import sys

    (tmp_path / "my_protocols.py").write_text(
        "from slmeval.scoring import Protocol\n"
        "SPIRIT = Protocol('spirit', score='sum', start_token='bos', score_eos=False, tie_value=0.0)\n"
        "MISNAMED = Protocol('other', score='mean', start_token='bos', score_eos=False)\n")
    dist = tmp_path / "my_protocols-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-protocols\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[slmeval.protocols]\nspirit = my_protocols:SPIRIT\n"
                                           "misnamed = my_protocols:MISNAMED\n")
    script = (
        "from slmeval.scoring import get_protocol\n"
        "from slmeval.scoring.protocol import ProtocolError\n"
        "p = get_protocol('spirit', {'tie_value': '0.5'})\n"
        "print(p.name, p.score, p.tie_value)\n"
        "try:\n    get_protocol('misnamed')\nexcept ProtocolError as err:\n    print('refused:', err)\n")
    done = subprocess.run([sys.executable, "-c", script], env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "spirit+custom sum 0.5"
    assert lines[1].startswith("refused: protocol 'misnamed' (entry point misnamed = my_protocols:MISNAMED "
                               "(my-protocols 1.0)) is not a Protocol named 'misnamed'")


def test_a_task_file_run_again_replaces_its_own_plugins_but_two_definitions_still_clash(tmp_path):
    """A Python task file executes again in every evaluate() of one process (sweeps, notebooks): its
    plugins replace their earlier selves. A different definition under the same name is still refused."""
    from slmeval.task_loader.files import read_task_file

    reg: Registry = Registry("thing", group="slmeval_test.things")
    sys.modules["slmeval_test_things"] = type(sys)("slmeval_test_things")
    sys.modules["slmeval_test_things"].REG = reg
    task_file = tmp_path / "mytasks.py"
    task_file.write_text("from slmeval_test_things import REG\n\n"
                         "@REG.register('counter')\ndef counter():\n    return 1\n\n"
                         "TASKS = [{'name': 'mine', 'source': 'units_jsonl', 'path': './u.jsonl'}]\n")
    try:
        first = read_task_file(task_file)
        made_first = reg.get("counter")
        assert read_task_file(task_file) == first          # the second run: no "registered twice"
        assert reg.get("counter") is not made_first and reg.get("counter")() == 1
        origin = reg.origin("counter")

        def counter():                                      # same name, another definition, same module name
            return 2
        counter.__qualname__ = "other_counter"
        with pytest.raises(PluginError, match="'counter' is registered twice"):
            reg.register("counter", counter, origin=origin)
    finally:
        sys.modules.pop("slmeval_test_things", None)
