"""docs/architecture.md's layer table is the source of truth: every module of slmeval is in exactly one
layer, every listed path exists, and no module imports from a layer below it in the table (higher
up in the stack), lazy imports inside functions included. The import graph comes from parsing every
module with `ast`, not from importing it."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
ROOT_MODULE = "slmeval"   # the package root: `__version__` and the lazy facade, outside the layers (see the doc)


def read_layers(text: str) -> list[tuple[str, list[str]]]:
    """[(layer, [path or folder/ under slmeval/, ...])] in table order, bottom layer first."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\|\s*layer\s*\|\s*modules\s*\|", line))
    layers = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        paths = [p.replace("*.py", "") for p in re.findall(r"`(slmeval/[^`]*)`", cells[1])]
        layers.append((cells[0], paths))
    return layers


def module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(files: list[Path], root: Path = REPO) -> dict[str, set[str]]:
    """module -> the slmeval modules it imports (anywhere in the file), resolved to existing modules."""
    known = {module_name(f, root) for f in files}

    def resolve(name: str) -> str | None:
        parts = name.split(".")
        while parts:
            if ".".join(parts) in known:
                return ".".join(parts)
            parts.pop()
        return None

    graph: dict[str, set[str]] = {}
    for f in files:
        me = module_name(f, root)
        package = me if f.name == "__init__.py" else me.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"), filename=str(f))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            # `from slmeval.x import y` imports module slmeval.x.y when y is a module, else slmeval.x
            for name in names:
                if name.split(".")[0] == "slmeval" and (target := resolve(name)) and target != me:
                    targets.add(target)
        graph[me] = targets
    return graph


def layer_of(path: Path, layers: list[tuple[str, list[str]]]) -> int | None:
    rel = path.relative_to(REPO).as_posix()
    hits = [(len(p), i) for i, (_, paths) in enumerate(layers) for p in paths
            if rel == p or (p.endswith("/") and rel.startswith(p))]
    if not hits:
        return None
    longest = max(n for n, _ in hits)   # the most specific row wins (a module named inside a listed folder)
    best = {i for n, i in hits if n == longest}
    return best.pop() if len(best) == 1 else -1


def violations(graph: dict[str, set[str]], layer: dict[str, int], names: list[str]) -> list[str]:
    out = []
    for src, targets in sorted(graph.items()):
        for dst in sorted(targets):
            if ROOT_MODULE in (src, dst) or layer.get(src) is None or layer.get(dst) is None:
                continue   # the root is outside the layers; unplaced modules fail the test above
            if layer[dst] > layer[src]:
                out.append(f"{src} ({names[layer[src]]}) imports {dst} ({names[layer[dst]]}), a layer above it")
    return out


@pytest.fixture(scope="module")
def parsed():
    layers = read_layers(DOC.read_text(encoding="utf-8"))
    files = sorted((REPO / "slmeval").rglob("*.py"))
    return layers, files, import_graph(files)


def test_table_lists_real_paths_and_every_module_once(parsed):
    layers, files, _ = parsed
    assert [name for name, _ in layers][:2] == ["foundations", "audio"] and layers[-1][0] == "cli"
    for name, paths in layers:
        for p in paths:
            found = list(REPO.glob(p)) if "*" in p else [REPO / p] if (REPO / p).exists() else []
            assert found, f"docs/architecture.md, layer {name}: {p} does not exist"
    unplaced = [f.relative_to(REPO).as_posix() for f in files
                if module_name(f) != ROOT_MODULE and layer_of(f, layers) in (None, -1)]
    assert not unplaced, f"modules in no layer (or in two) of docs/architecture.md: {unplaced}"


def test_no_module_imports_from_a_higher_layer(parsed):
    layers, files, graph = parsed
    layer = {module_name(f): layer_of(f, layers) for f in files if module_name(f) != ROOT_MODULE}
    found = violations(graph, layer, [n for n, _ in layers])
    assert not found, "\n".join(found)


def test_the_check_can_fail(parsed, tmp_path):
    # negative control: an upward import (tasks importing the evaluator), lazy inside a function, is caught
    layers = parsed[0]
    names = [n for n, _ in layers]
    (tmp_path / "slmeval" / "task_loader").mkdir(parents=True)
    (tmp_path / "slmeval" / "task_loader" / "registry.py").write_text("def f():\n    from slmeval.evaluator import evaluate\n")
    (tmp_path / "slmeval" / "evaluator.py").write_text("from .task_loader import registry\n")   # downward: allowed
    graph = import_graph(sorted((tmp_path / "slmeval").rglob("*.py")), tmp_path)
    assert graph == {"slmeval.task_loader.registry": {"slmeval.evaluator"}, "slmeval.evaluator": {"slmeval.task_loader.registry"}}
    layer = {"slmeval.task_loader.registry": names.index("tasks"), "slmeval.evaluator": names.index("results")}
    assert violations(graph, layer, names) == [
        "slmeval.task_loader.registry (tasks) imports slmeval.evaluator (results), a layer above it"]
