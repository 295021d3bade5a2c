"""Meta-tests in the datasette manner: the plugin documentation keeps up with the code."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from rrbench.components import hookspecs

ROOT = Path(__file__).resolve().parents[2]
CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if inspect.isfunction(fn) and hasattr(fn, "rrbench_spec"))


def test_every_hook_is_documented():
    assert HOOKS, "no hookspecs found"
    table = CONTRIBUTING[CONTRIBUTING.index("### Hooks"):]
    missing = [hook for hook in HOOKS if f"| `{hook}` |" not in table]
    assert not missing, f"hooks missing from CONTRIBUTING.md's hook table: {missing}"


def test_every_hook_is_exercised_by_the_documented_third_party_example():
    """CONTRIBUTING's rrbench-example (installed and run by test_contributing_examples) implements every hook."""
    block = re.search(r"```python file=rrbench_example/__init__.py\n(.*?)```", CONTRIBUTING, re.DOTALL)
    assert block, "the example's __init__.py block is missing"
    implemented = set(re.findall(r"@hookimpl\ndef (register_\w+)\(", block.group(1)))
    assert implemented == set(HOOKS), sorted(set(HOOKS) ^ implemented)


def test_the_subpackage_map_lists_every_subpackage_and_top_module():
    start = CONTRIBUTING.index("| subpackage | what it owns |")
    table = CONTRIBUTING[start:CONTRIBUTING.index("\n\n", start)]
    package = ROOT / "rrbench"
    missing = [f"rrbench/{p.name}/" for p in sorted(package.iterdir())
               if p.is_dir() and (p / "__init__.py").exists() and f"`rrbench/{p.name}/`" not in table]
    real_top = [p for p in package.glob("*.py") if p.name != "__init__.py" and "forwarding(" not in p.read_text()]
    missing += [f"rrbench/{p.name}" for p in sorted(real_top) if f"`rrbench/{p.name}`" not in table]
    assert not missing, f"missing from CONTRIBUTING.md's subpackage map: {missing}"


def test_the_architecture_doc_names_every_subpackage_in_the_tested_layer_order():
    from tests.architecture.test_import_graph import LAYERS

    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    order = " < ".join("/".join(names) for names in LAYERS)
    assert f"**{order}**" in doc, f"docs/architecture.md must state the layer order {order!r}"
    missing = [names[0] for names in LAYERS if f"**{names[0]}/**" not in doc]
    assert not missing, f"docs/architecture.md has no paragraph for: {missing}"
