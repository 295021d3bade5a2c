"""Meta-tests in the datasette manner: the plugin documentation keeps up with the code."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from rrbench import hookspecs

ROOT = Path(__file__).resolve().parent.parent
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


def test_module_map_lists_every_module():
    start = CONTRIBUTING.index("| module | one concept |")
    table = CONTRIBUTING[start:CONTRIBUTING.index("\n\n", start)]
    package = ROOT / "rrbench"
    missing = []
    for path in sorted(package.glob("*.py")):
        if path.name != "__init__.py" and path.name not in table:
            missing.append(f"rrbench/{path.name}")
    for path in sorted(p for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        if f"rrbench/{path.name}/" not in table:
            missing.append(f"rrbench/{path.name}/")
    assert not missing, f"modules missing from CONTRIBUTING.md's module map: {missing}"
