"""The package's import graph: no cycles, and the lower layers never reach the upper ones.

Every module is parsed with ``ast`` (nothing is imported), every import counts (top
level, inside functions, under ``TYPE_CHECKING``), and relative imports are
resolved. A failure prints the chain of imports that breaks the rule.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "platform" / "raytag"

# Plain-Python layers: readers, models, decoding, metrics, the registry and the Tagger API
# are used by training, tuning, serving and the CLI, never the other way round.
LOWER = ("raytag.corpus", "raytag.models", "raytag.decoding", "raytag.evaluate", "raytag.registry",
         "raytag.registry_refs", "raytag.registry_files", "raytag.registry_store", "raytag.tagger", "raytag.tagged",
         "raytag.onnx_tagger", "raytag.onnx_export", "raytag.model_card")
TUNE = ("raytag.tune", "raytag.tune_config", "raytag.tune_results")
UPPER = ("raytag.train", *TUNE, "raytag.serving", "raytag.cli")
RULES: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (LOWER, UPPER),
    (("raytag.serving",), ("raytag.train", *TUNE)),
]

Graph = Mapping[str, Iterable[str]]


def module_names(package_dir: Path, package: str) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` file under ``package_dir``."""
    out = {}
    for file in sorted(package_dir.rglob("*.py")):
        parts = [package, *file.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = file
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def import_graph(package_dir: Path, package: str = "raytag") -> dict[str, set[str]]:
    """Module → the package's modules it imports (anywhere in its body)."""
    modules = module_names(package_dir, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, file in modules.items():
        is_package = file.name == "__init__.py"
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), str(file))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(name, is_package, node)
                # ``from pkg import mod`` imports the module pkg.mod; ``from mod import name`` imports mod.
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
            for target in targets:
                # ``import raytag.a.b`` where raytag.a.b is not a module of ours: take its longest known prefix.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """One import cycle as a chain ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def _within(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layering_violations(graph: Graph, rules: Iterable[tuple[Iterable[str], Iterable[str]]]) -> list[list[str]]:
    """For each rule (sources, forbidden) the shortest import chain from a source into a forbidden module."""
    out = []
    for sources, forbidden in rules:
        sources, forbidden = tuple(sources), tuple(forbidden)
        for start in sorted(m for m in graph if _within(m, sources)):
            # Breadth first, so the chain printed is a shortest one.
            parents: dict[str, str | None] = {start: None}
            queue = [start]
            while queue:
                node = queue.pop(0)
                if node != start and _within(node, forbidden):
                    chain = [node]
                    while parents[chain[-1]] is not None:
                        chain.append(parents[chain[-1]])  # type: ignore[arg-type]
                    out.append(chain[::-1])
                    break
                for nxt in sorted(graph.get(node, ())):
                    if nxt not in parents:
                        parents[nxt] = node
                        queue.append(nxt)
    return out


# --- the real package ---------------------------------------------------------------------------


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph(PACKAGE_DIR))
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_lower_layers_never_import_training_tuning_serving_or_the_cli():
    violations = layering_violations(import_graph(PACKAGE_DIR), RULES)
    assert not violations, "layering broken:\n" + "\n".join(" → ".join(chain) for chain in violations)


def test_the_graph_sees_the_real_package():
    graph = import_graph(PACKAGE_DIR)
    # Guards against a checker that passes because it parsed nothing.
    assert {"raytag.cli", "raytag.cli._util", "raytag.tagger", "raytag.train.run"} <= set(graph)
    assert "raytag.cli._util" in graph["raytag.cli.corpus"]
    assert "raytag.train.run" in graph["raytag.artifact"]  # a function-local import


# --- the checker itself -------------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / "pkg" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_function_local_and_relative_imports_are_edges(tmp_path):
    package = _write(tmp_path, {
        "__init__.py": "",
        "a.py": "def f():\n    from . import b\n",
        "b.py": "from .sub.c import thing\n",
        "sub/__init__.py": "",
        "sub/c.py": "from .. import a\nimport pkg.sub\n",
    })
    graph = import_graph(package, "pkg")
    assert graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.b"] == {"pkg.sub.c"}
    assert graph["pkg.sub.c"] == {"pkg.a", "pkg.sub"}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]


def test_a_cycle_is_found_and_an_acyclic_graph_passes():
    assert find_cycle({"x": {"y"}, "y": {"z"}, "z": {"x"}}) == ["x", "y", "z", "x"]
    assert find_cycle({"x": {"y", "z"}, "y": {"z"}, "z": set()}) is None


def test_a_transitive_layering_violation_is_found_with_its_chain():
    graph = {
        "raytag.models.bilstm": {"raytag.config"},
        "raytag.config": {"raytag.tune"},
        "raytag.tune": {"raytag.train.run"},
        "raytag.train.run": set(),
        "raytag.serving.app": {"raytag.tagger"},
        "raytag.tagger": set(),
    }
    assert layering_violations(graph, RULES) == [["raytag.models.bilstm", "raytag.config", "raytag.tune"]]
    del graph["raytag.config"]
    graph["raytag.models.bilstm"] = set()
    assert layering_violations(graph, RULES) == []


@pytest.mark.parametrize("module", ["raytag.cli.corpus", "raytag.train.keras_loop"])
def test_upper_layers_may_import_lower_ones(module):
    assert layering_violations({module: {"raytag.tagger"}, "raytag.tagger": set()}, RULES) == []
