"""Architecture checks on the package's import graph, read from the source (AST), never by importing it.

* Production code does not import ``rrbench.testing``: the helpers ``rrbench check`` and ``rrbench new-plugin`` need
  live in ``rrbench.tasks.mini`` and ``rrbench.models.tiny``, and ``rrbench.testing`` re-exports them for plugin tests.
* No import cycles inside ``rrbench/`` (see ``test_no_import_cycles`` for what counts as an edge).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import rrbench

PACKAGE = Path(rrbench.__file__).parent


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    in_function: bool


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it sits inside a function; ``if TYPE_CHECKING:`` bodies are skipped
    (they never run), their ``else:`` branches are not."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for node in child.orelse:
                yield from _imports(ast.Module(body=[node], type_ignores=[]), in_function)
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function
        yield from _imports(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                     ast.Lambda)))


INIT = ":init"  # suffix of the node standing for a package's top-level code alone


def import_graph(root: Path = PACKAGE) -> tuple[set[str], list[Edge]]:
    """Modules of the package under ``root`` and the import edges between them.

    Every import statement counts, inside functions too; ``if TYPE_CHECKING:`` blocks do not (they never run).

    Packages: importing ``rrbench.x.y`` first runs the top level of ``rrbench/x/__init__.py``, and only that: the
    imports inside the package's functions run when one of them is called, which needs an import naming the package
    itself. So the edge goes to ``rrbench.x.y`` and to the node ``rrbench.x:init`` (whose edges are the package's
    top-level imports), while ``import rrbench.x`` or ``from rrbench.x import name`` (a name defined in
    ``__init__.py``) goes to ``rrbench.x`` with all its edges. A package enclosing the importer gets no edge: Python
    initialised it before the importer ran. ``from rrbench.x import name`` targets the submodule ``rrbench.x.name``
    when one exists. The top-level ``rrbench`` package is never a target: Python runs it before any submodule, so a
    submodule cannot re-enter it (its own imports are edges like any other).
    """
    top = root.name
    files = {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    packages = {m for m, p in files.items() if p.name == "__init__.py"}
    edges: list[Edge] = []
    for module, path in files.items():
        is_package = module in packages
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, in_function in _imports(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                if node.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[:len(base) - (node.level - 1)]
                    full = ".".join(base + ([node.module] if node.module else []))
                else:
                    full = node.module or ""
                names = [f"{full}.{a.name}" if f"{full}.{a.name}" in files else full for a in node.names]
            for name in names:
                if name != top and not name.startswith(top + "."):
                    continue
                while name not in files and "." in name:
                    name = name.rsplit(".", 1)[0]
                parts = name.split(".")
                targets = [name] + [".".join(parts[:i]) + INIT for i in range(2, len(parts))
                                    if not (module + ".").startswith(".".join(parts[:i]) + ".")]
                for target in targets:
                    if target not in (top, module):
                        edges.append(Edge(module, target, node.lineno, in_function))
                        if is_package and not in_function:
                            edges.append(Edge(module + INIT, target, node.lineno, False))
    return set(files) | {p + INIT for p in packages}, edges


def find_cycle(modules: set[str], edges: list[Edge]) -> list[Edge] | None:
    """One cycle of the graph as its edges (depth-first search), or None."""
    out: dict[str, list[Edge]] = {m: [] for m in modules}
    for edge in edges:
        out[edge.source].append(edge)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[Edge] = []

    def visit(module: str) -> list[Edge] | None:
        state[module] = 1
        for edge in out[module]:
            if state.get(edge.target) == 1:
                start = next((i for i, e in enumerate(path) if e.source == edge.target), len(path))
                return path[start:] + [edge]
            if edge.target not in state:
                path.append(edge)
                found = visit(edge.target)
                if found:
                    return found
                path.pop()
        state[module] = 2
        return None

    for module in sorted(modules):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def _describe(cycle: list[Edge]) -> str:
    return " -> ".join([cycle[0].source] + [f"{e.target} (line {e.line} of {e.source})" for e in cycle])


def test_production_code_never_imports_rrbench_testing():
    modules, edges = import_graph()
    testing = "rrbench.testing"
    offenders = [f"{e.source} line {e.line}" for e in edges
                 if (e.target == testing or e.target.startswith(testing + "."))
                 and not (e.source.split(":")[0] + ".").startswith(testing + ".")]
    assert not offenders, "production modules import rrbench.testing: " + ", ".join(offenders)


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_graph_sees_function_level_relative_and_package_imports(tmp_path):
    root = _write(tmp_path / "pkg", {
        "__init__.py": "",
        "a.py": "def f():\n    from pkg.sub import b\n",
        "sub/__init__.py": "from . import b\n",
        "sub/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\nfrom .. import c\n",
        "c.py": "import pkg.testing.x\n",
        "testing/__init__.py": "", "testing/x.py": "",
    })
    modules, edges = import_graph(root)
    pairs = {(e.source, e.target, e.in_function) for e in edges}
    assert ("pkg.a", "pkg.sub.b", True) in pairs and ("pkg.a", "pkg.sub:init", True) in pairs
    assert ("pkg.sub", "pkg.sub.b", False) in pairs and ("pkg.sub:init", "pkg.sub.b", False) in pairs
    assert ("pkg.sub.b", "pkg.c", False) in pairs
    assert not any(e.source == "pkg.sub.b" and e.target.startswith("pkg.sub:") for e in edges)  # its own package
    assert not any(e.source == "pkg.sub.b" and e.target == "pkg.a" for e in edges)  # TYPE_CHECKING only
    assert ("pkg.c", "pkg.testing.x", False) in pairs and ("pkg.c", "pkg.testing:init", False) in pairs
    assert find_cycle(modules, edges) is None


PACKAGE_WITH_LOADER = {
    "__init__.py": "",
    "sub/__init__.py": "from .leaf import X\n\ndef load():\n    from pkg import registry\n",
    "sub/leaf.py": "X = 1\n",
}


def test_a_package_functions_imports_count_only_for_who_names_the_package(tmp_path):
    # the registry imports a leaf of pkg.sub: that runs pkg/sub/__init__.py's top level, not load()'s import
    root = _write(tmp_path / "ok" / "pkg", {**PACKAGE_WITH_LOADER, "registry.py": "from pkg.sub.leaf import X\n"})
    assert find_cycle(*import_graph(root)) is None
    # importing load() from the package itself closes the cycle
    root = _write(tmp_path / "bad" / "pkg", {**PACKAGE_WITH_LOADER,
                                             "registry.py": "def f():\n    from pkg.sub import load\n"})
    cycle = find_cycle(*import_graph(root))
    assert cycle is not None and {e.source for e in cycle} == {"pkg.registry", "pkg.sub"}


def test_a_cycle_is_found_and_named(tmp_path):
    root = _write(tmp_path / "pkg", {"__init__.py": "", "a.py": "from pkg import b\n",
                                     "b.py": "def f():\n    import pkg.c\n", "c.py": "from .a import x\n"})
    cycle = find_cycle(*import_graph(root))
    assert cycle is not None
    assert {e.source for e in cycle} == {"pkg.a", "pkg.b", "pkg.c"}
    assert _describe(cycle) == ("pkg.a -> pkg.b (line 1 of pkg.a) -> pkg.c (line 2 of pkg.b) "
                                "-> pkg.a (line 1 of pkg.c)")


def test_no_import_cycles():
    """Any cycle among rrbench's modules fails, with its modules and the import lines that close it."""
    cycle = find_cycle(*import_graph())
    assert cycle is None, "import cycle: " + _describe(cycle)


# -- layering ----------------------------------------------------------------------------------------------------------
#: The one declaration of rrbench's layers, lowest first (docs/architecture.md draws the same order; a docs meta-test
#: checks it). A module may import its own layer and the layers below it, never one above: counting imports inside
#: functions too. Modules at the top of the package (the faces ``rrbench``, ``rrbench.plugin``, ``rrbench.testing``,
#: rrbench's own plugin ``rrbench.builtins`` and the deprecation shims) sit above every layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("util",),
    ("components",),
    ("measures",),
    ("tasks",),
    ("models",),
    ("retrievers",),
    ("records",),
    ("pipeline",),
    ("leaderboard",),
    ("training",),
    ("hpo",),
    ("checks",),
    ("cli",),
)
#: Old import paths kept for one minor version (rrbench.util.deprecation); nothing inside rrbench may import them.
SHIMS = ("rrbench.specs", "rrbench.registry", "rrbench.decide", "rrbench.fusion", "rrbench.runner",
         "rrbench.candidates", "rrbench.retrievers.base", "rrbench.models.base", "rrbench.training.testing")
#: Real modules allowed at the top of the package besides the shims.
TOP_LEVEL = ("rrbench", "rrbench.api", "rrbench.plugin", "rrbench.builtins")
FACES = ("rrbench", "rrbench.api", "rrbench.plugin", "rrbench.testing", "rrbench.builtins")


def layer_of(module: str, layers: tuple[tuple[str, ...], ...] = LAYERS) -> int | None:
    """Index of the layer of ``rrbench.<sub>...`` (None for the faces and shims above every layer)."""
    parts = module.split(":")[0].split(".")
    if len(parts) < 2:
        return None
    for index, names in enumerate(layers):
        if parts[1] in names:
            return index
    return None


def upward_imports(edges: list[Edge], layers: tuple[tuple[str, ...], ...] = LAYERS) -> list[str]:
    out = []
    for edge in edges:
        source, target = layer_of(edge.source, layers), layer_of(edge.target, layers)
        if source is not None and target is not None and target > source:
            where = "inside a function" if edge.in_function else "at module level"
            out.append(f"{edge.source.split(':')[0]} line {edge.line} imports {edge.target.split(':')[0]} ({where}): "
                       f"{'/'.join(layers[source])} sits below {'/'.join(layers[target])}")
    return sorted(set(out))


def test_every_subpackage_has_a_layer():
    modules, _ = import_graph()
    subpackages = {m.split(":")[0].split(".")[1] for m in modules if m.count(".") >= 1}
    placed = {name for names in LAYERS for name in names} | {m.split(".")[1] for m in FACES + SHIMS if "." in m}
    assert subpackages <= placed, f"subpackages without a layer in LAYERS: {sorted(subpackages - placed)}"


def test_no_module_imports_a_layer_above_its_own():
    """util < components < measures < tasks < models < retrievers < records < pipeline < leaderboard < training <
    hpo < checks < cli, imports inside functions included."""
    _, edges = import_graph()
    offenders = upward_imports(edges)
    assert not offenders, "upward imports:\n" + "\n".join(offenders)


def test_an_upward_import_added_on_purpose_is_caught(tmp_path):
    root = _write(tmp_path / "pkg", {"__init__.py": "", "util/__init__.py": "", "cli/__init__.py": "",
                                     "util/io.py": "def f():\n    from pkg.cli import main\n",
                                     "cli/main.py": "from pkg.util import io\n"})
    _, edges = import_graph(root)
    offenders = upward_imports(edges, (("util",), ("cli",)))
    assert "pkg.util.io line 2 imports pkg.cli.main (inside a function): util sits below cli" in offenders
    assert not any(o.startswith("pkg.cli.main") for o in offenders)  # downward imports are fine


def test_nothing_inside_rrbench_imports_a_deprecation_shim():
    _, edges = import_graph()
    offenders = [f"{e.source} line {e.line} imports {e.target}" for e in edges
                 if e.target in SHIMS and e.source.split(":")[0] not in SHIMS]
    assert not offenders, "internal use of deprecated paths: " + ", ".join(offenders)


def test_few_modules_at_the_top_of_the_package():
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    real = [f"rrbench.{m}" if m != "__init__" else "rrbench" for m in top]
    unexpected = [m for m in real if m not in TOP_LEVEL + SHIMS]
    assert not unexpected, f"modules at the top of rrbench/ beyond the faces and shims: {unexpected}"


#: Third-party packages heavy enough to import on first use, inside the function that needs them. Every other import
#: (rrbench's own modules, the standard library, numpy, click, pydantic, yaml) sits at the top of its module, where a
#: reader sees what a module depends on.
HEAVY_OPTIONAL = frozenset({
    "torch", "transformers", "sentence_transformers", "FlagEmbedding", "optuna", "sqlalchemy", "onnxruntime", "onnx",
    "openvino", "nncf", "matplotlib", "psycopg", "datasets", "pyarrow", "faiss", "bm25s", "Stemmer", "scipy",
    "sklearn", "huggingface_hub", "tokenizers", "safetensors", "pytrec_eval", "playwright", "accelerate", "peft",
})


def function_level_imports(root: Path = PACKAGE) -> list[tuple[str, int, str, bool]]:
    """``(file, line, top-level package, has a comment)`` for every import inside a function under ``root``."""
    out = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node, in_function in _imports(ast.parse(source, filename=str(path))):
            if not in_function:
                continue
            if isinstance(node, ast.ImportFrom):
                top = (node.module or "").split(".")[0] if node.level == 0 else root.name
            else:
                top = node.names[0].name.split(".")[0]
            line = lines[node.lineno - 1]
            above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
            out.append((str(path.relative_to(root.parent)), node.lineno, top, "#" in line or above.startswith("#")))
    return out


def test_imports_inside_functions_are_only_for_heavy_optional_packages():
    offenders = [f"{file}:{line} imports {top}" for file, line, top, _ in function_level_imports()
                 if top not in HEAVY_OPTIONAL]
    assert not offenders, ("imports inside functions that belong at the top of their module:\n"
                           + "\n".join(offenders))


def test_each_lazy_import_says_why():
    offenders = [f"{file}:{line} ({top})" for file, line, top, commented in function_level_imports()
                 if top in HEAVY_OPTIONAL and not commented]
    assert not offenders, "lazy imports without a comment saying why:\n" + "\n".join(offenders)
