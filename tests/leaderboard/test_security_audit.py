"""Nothing rrbench reads executes code: no pickle, no eval/exec, no unsafe torch.load or np.load (issue 14).

An AST scan of the package, so that a later change that adds one fails here rather than in a user's hands.
"""

from __future__ import annotations

import ast
from pathlib import Path

import rrbench

PACKAGE = Path(rrbench.__file__).parent


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = (getattr(func.value, "id", "<expr>") if isinstance(func, ast.Attribute) else "")
            yield node, owner, name


def _keyword(node: ast.Call, name: str):
    for kw in node.keywords:
        if kw.arg == name:
            return kw.value
    return None


def test_the_package_never_unpickles_or_evaluates_code():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(n and n.split(".")[0] in ("pickle", "dill", "cloudpickle", "marshal") for n in names):
                    problems.append(f"{where}:{node.lineno}: imports a pickle-like module")
        for node, owner, name in _calls(tree):
            if owner == "" and name in ("eval", "exec"):
                problems.append(f"{where}:{node.lineno}: calls {name}()")
            if owner == "torch" and name == "load":
                flag = _keyword(node, "weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    problems.append(f"{where}:{node.lineno}: torch.load without weights_only=True")
            if owner in ("np", "numpy") and name == "load":
                flag = _keyword(node, "allow_pickle")
                if not (isinstance(flag, ast.Constant) and flag.value is False):
                    problems.append(f"{where}:{node.lineno}: np.load without allow_pickle=False")
    assert not problems, "\n".join(problems)


def test_the_scan_would_catch_an_unsafe_load(tmp_path):
    tree = ast.parse("import torch\nimport pickle\ntorch.load('x')\neval('1')\n")
    found = {(owner, name) for _, owner, name in _calls(tree)}
    assert ("torch", "load") in found and ("", "eval") in found
