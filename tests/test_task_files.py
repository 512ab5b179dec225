"""Task files: `include:`, which files are task files, broken files in isolation, safe names, paths."""
from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from slmeval.cli import app
from slmeval.task_loader.registry import TaskError, all_tasks, builtin_task_dir, get_tasks, load_registry

BASE = """
source: units_jsonl
path: ./shared.jsonl
headline: acc
grouping: {breakdown: [kind]}
options: {}
"""


def _write(folder, name, text):
    (folder / name).write_text(textwrap.dedent(text))
    return folder / name


def test_include_merges_like_lm_eval(tmp_path):
    # lm-eval (lm_eval/tasks/_yaml_loader.py, load_yaml): includes relative to the including file,
    # merged in order, the including file's own keys win, shallow merge, nested includes.
    _write(tmp_path, "_base.yaml", BASE)
    sub = tmp_path / "more"
    sub.mkdir()
    _write(sub, "_mid.yaml", "include: ../_base.yaml\nheadline: acc_macro\noptions: {x: 1}\n")
    own = "leaderboard: {section: a}\nexports: {}\nversion: 1\n"     # never inherited (test below)
    _write(tmp_path, "a.yaml", "include: _base.yaml\nname: inc_a\ngrouping: {voice: v}\n" + own)
    _write(tmp_path, "b.yaml", "include: [_base.yaml, more/_mid.yaml]\nname: inc_b\noptions: {}\n" + own)
    tasks = all_tasks([tmp_path])
    a, b = tasks["inc_a"], tasks["inc_b"]
    assert (a.source, a.headline, a.version) == ("units_jsonl", "acc", 1)
    assert (a.grouping.voice, a.grouping.breakdown) == ("v", ())    # shallow: the whole mapping is replaced
    assert (b.headline, b.options) == ("acc_macro", {})    # later include wins over earlier, own keys over both
    assert "_base" not in " ".join(tasks)                    # files starting with _ are never tasks
    # ./ paths are relative to the task file that defines the task (not to the base that was included)
    assert a.resolve_path(None) == (tmp_path / "shared.jsonl").resolve()


@pytest.mark.parametrize("field", ["leaderboard", "exports", "version"])
def test_a_task_never_inherits_section_export_or_version_from_a_base(tmp_path, field):
    # issue 24: "sWUGGY-long" on _swuggy_base.yaml must not publish into sWUGGY's section nor claim its
    # lexical/<split>.txt export: a base that would hand one of them down makes the task unusable, named
    own = {"leaderboard": "leaderboard: {section: long}\n", "exports": "exports: {}\n", "version": "version: 1\n"}
    base_value = {"leaderboard": "{section: swuggy}", "exports": "{zerospeech: {track: lexical}}", "version": "2"}
    _write(tmp_path, "_b.yaml", BASE + f"{field}: {base_value[field]}\n")
    _write(tmp_path, "long.yaml", "include: _b.yaml\nname: long\n" + "".join(v for k, v in own.items() if k != field))
    _write(tmp_path, "ok.yaml", "include: _b.yaml\nname: ok\n" + "".join(own.values()))   # declared: fine
    registry = load_registry([tmp_path])
    assert "ok" in registry.tasks and "long" not in registry.tasks
    (reason,) = [b.reason for b in registry.broken if b.origin.endswith("long.yaml")]
    assert f"field(s) {field} would be inherited from the included _b.yaml" in reason
    with pytest.raises(TaskError, match=f"(?s)'long' cannot be used: .*long.yaml.*{field}"):
        get_tasks(["long"], [tmp_path])


def test_builtin_tasks_declare_their_own_section_export_and_version():
    for path in sorted(builtin_task_dir().rglob("*.yaml")):
        assert path.parent != builtin_task_dir(), path        # a folder per benchmark (tasks/<benchmark>/)
        text = path.read_text()
        if path.name.startswith("_"):
            assert not any(line.startswith(("leaderboard:", "exports:", "version:")) for line in text.splitlines()), path
        elif text.startswith("include:") or "\ninclude:" in text:
            assert "\nversion:" in text, path


def test_include_errors_name_the_file(tmp_path):
    _write(tmp_path, "cycle.yaml", "include: _loop.yaml\nname: cyc\n")
    _write(tmp_path, "_loop.yaml", "include: cycle.yaml\nsource: units_jsonl\npath: x\n")
    _write(tmp_path, "missing.yaml", "include: _nope.yaml\nname: miss\n")
    registry = load_registry([tmp_path])
    reasons = {b.origin.split("/")[-1]: b.reason for b in registry.broken}
    assert "include cycle: cycle.yaml -> _loop.yaml -> cycle.yaml" in reasons["cycle.yaml"]
    assert "included file '_nope.yaml' not found" in reasons["missing.yaml"]
    with pytest.raises(TaskError, match="(?s)'miss' cannot be used: .*missing.yaml"):
        get_tasks(["miss"], [tmp_path])


def test_builtin_sblimp_tasks_share_one_base():
    tasks = all_tasks()
    dev, test, mini = tasks["sblimp"], tasks["sblimp_test"], tasks["mini_sblimp"]
    for t in (dev, test, mini):
        assert (t.source, t.family, t.grouping.item) == ("zerospeech_sblimp", "voice_averaged", ("type", "subtype", "item"))
        assert t.exports == {"zerospeech": {"track": "syntactic"}}
    assert (dev.options, test.options) == ({"split": "dev"}, {"split": "test"})
    assert (dev.section, test.section, mini.section) == ("sblimp", "sblimp", "mini_sblimp")
    assert mini.mini and mini.resolve_path(None) == (builtin_task_dir().parent / "audio_assets" / "mini_sblimp").resolve()
    assert not any(t.mini for t in (dev, test))


def test_only_task_files_are_run(tmp_path, caplog):
    marker = tmp_path / "ran"
    _write(tmp_path, "setup.py", f"open({str(marker)!r}, 'w').write('executed')\n")
    _write(tmp_path, "helper.py", f"open({str(marker)!r}, 'w').write('executed')\nX = 1\n")
    _write(tmp_path, "mine.py", "TASKS = [dict(name='py_ok', source='units_jsonl', path='x.jsonl')]\n")
    _write(tmp_path, "README.md", "not a task\n")
    with caplog.at_level(logging.INFO):
        tasks = all_tasks([tmp_path])
    assert "py_ok" in tasks and not marker.exists()        # setup.py and helper.py were never executed
    assert "setup.py: skipped, not a task file" in caplog.text


def test_broken_files_name_themselves_and_block_nothing_else(tmp_path):
    _write(tmp_path, "good.yaml", "name: fine\nsource: units_jsonl\npath: x.jsonl\n")
    _write(tmp_path, "raises.py", "TASKS = []\nimport nonexistent_module_xyz\n")
    _write(tmp_path, "exits.py", "import sys\nTASKS = [dict(name='exits')]\nsys.exit(3)\n")
    _write(tmp_path, "syntax.yaml", "name: [unclosed\n")
    _write(tmp_path, "typo.yaml", "name: typo\nsource: units_jsonl\npath: x\nheadlien: acc\n")
    _write(tmp_path, "noreader.yaml", "name: noreader\nsource: nope_layout\npath: x\n")
    _write(tmp_path, "noname.yaml", "source: units_jsonl\npath: x\n")
    registry = load_registry([tmp_path])
    assert "fine" in registry.tasks and "sblimp" in registry.tasks
    reasons = {b.origin.split("/")[-1]: b.reason for b in registry.broken}
    assert set(reasons) == {"raises.py", "exits.py", "syntax.yaml", "typo.yaml", "noreader.yaml", "noname.yaml"}
    assert "raised ModuleNotFoundError: No module named 'nonexistent_module_xyz' (line 2) while being imported" \
        in reasons["raises.py"]
    assert "raised SystemExit: 3" in reasons["exits.py"]
    assert "not valid YAML" in reasons["syntax.yaml"]
    assert "unknown task field(s) ['headlien']" in reasons["typo.yaml"]
    assert "unknown reader 'nope_layout'" in reasons["noreader.yaml"]
    assert "no `name`" in reasons["noname.yaml"] and "starts with `_`" in reasons["noname.yaml"]
    assert get_tasks(["fine"], [tmp_path])[0].name == "fine"
    # CLI: a clear error naming the file, no traceback; the listing still shows everything else
    runner = CliRunner()
    res = runner.invoke(app, ["run", "--model", str(tmp_path), "--tasks", "exits", "--include-path", str(tmp_path)])
    said = " ".join(res.output.split())   # rich wraps long lines
    assert res.exit_code == 2 and "exits.py: raised SystemExit: 3" in said and "Traceback" not in said
    res = runner.invoke(app, ["tasks", "--include-path", str(tmp_path)])
    assert res.exit_code == 0 and "fine" in res.output and "sblimp" in res.output
    assert "broken:" in res.output and "typo.yaml" in res.output


@pytest.mark.parametrize("name", ["x/../../../victim/results", "../up", ".hidden", "a b"])
def test_task_names_are_safe_file_names(tmp_path, name):
    _write(tmp_path, "evil.yaml", f"name: {name!r}\nsource: units_jsonl\npath: x.jsonl\n")
    registry = load_registry([tmp_path])
    assert name not in registry.tasks
    assert any("cannot be used as a file name" in b.reason and "evil.yaml" in b.reason for b in registry.broken)


def test_paths_resolve_against_task_file_or_data_root(tmp_path):
    _write(tmp_path, "p.yaml", """
        - {name: rel_file, source: units_jsonl, path: ./data/u.jsonl}
        - {name: rel_root, source: units_jsonl, path: data/u.jsonl}
        - {name: absolute, source: units_jsonl, path: /abs/u.jsonl}
    """)
    tasks = all_tasks([tmp_path])
    path, how = tasks["rel_file"].locate("/ignored")
    assert path == (tmp_path / "data" / "u.jsonl").resolve() and "relative to the task file" in how
    assert tasks["rel_root"].locate("/root") == (Path("/root/data/u.jsonl"), "relative to --data-root")
    assert str(tasks["absolute"].resolve_path(None)) == "/abs/u.jsonl"
    with pytest.raises(TaskError, match="relative to --data-root, which was not given"):
        tasks["rel_root"].resolve_path(None)


def test_missing_builtin_tasks_is_a_loud_error(monkeypatch, tmp_path):
    import slmeval.task_loader.registry as reg

    monkeypatch.setattr(reg, "BUILTIN_PACKAGE", "slmeval_no_such_package_xyz")
    with pytest.raises(TaskError, match="no built-in tasks.*incomplete"):
        all_tasks()
    res = CliRunner().invoke(app, ["tasks"])
    assert res.exit_code == 2 and "no built-in tasks" in res.output


def test_exports_and_families_are_checked_before_any_work(tiny_llama_dir, tmp_path):
    import slmeval
    from slmeval.plugins import PluginError

    # no data under tmp_path: every error below must come before the data (or the model) is touched
    with pytest.raises(TaskError, match=r"--export zerospeech: none of the selected tasks declares it \(sstorycloze\)"):
        slmeval.evaluate(tiny_llama_dir, ["sstorycloze"], data_root=tmp_path, export="zerospeech", progress=False)
    with pytest.raises(PluginError, match="unknown export 'nope'; registered: zerospeech"):
        slmeval.evaluate(tiny_llama_dir, ["sblimp"], data_root=tmp_path, export="nope", progress=False)
    _write(tmp_path, "fam.yaml", "name: odd_family\nfamily: weird\nsource: units_jsonl\npath: x.jsonl\n")
    with pytest.raises(TaskError, match=r"task 'odd_family' \(.*fam.yaml\): unknown metric family 'weird'"):
        slmeval.evaluate(tiny_llama_dir, ["odd_family"], data_root=tmp_path, include_path=[tmp_path], progress=False)


def test_builtin_tasks_are_a_folder_per_benchmark_and_declare_what_they_publish():
    # issue 24: tasks/<benchmark>/ holds README.md (paper + citation), an optional _template.yaml and one
    # file per variant; leaderboard section, exports and version are the variant's own, never a template's
    root = builtin_task_dir()
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    assert folders == ["mini", "salmon", "sblimp", "storycloze", "swuggy"]
    assert not list(root.glob("*.yaml")), "task files live in their benchmark's folder"
    for name in folders:
        readme = (root / name / "README.md").read_text()
        assert "| file |" in readme, name                      # the variant table
        if name != "mini":                                      # toy data: points at the benchmarks' READMEs
            assert "arXiv:" in readme and "```bibtex" in readme, name
    for template in root.rglob("_*.yaml"):
        assert not {"leaderboard", "exports", "version", "name"} & set(yaml.safe_load(template.read_text())), template
    tasks = all_tasks()
    for path in root.rglob("[!_]*.yaml"):
        own = yaml.safe_load(path.read_text())
        assert {"leaderboard", "version"} <= set(own), path
        assert tasks[own["name"]].origin == str(path)
        # the README lists every variant file
        assert f"`{path.name}`" in (path.parent / "README.md").read_text(), path
