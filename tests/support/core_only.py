"""Run rrbench commands the way the Quickstart's install sees them: the optional extras are not installed.

``python -m tests.support.core_only COMMANDS.json RESULTS.json`` runs each argument list of COMMANDS.json through
``rrbench.cli.main`` in this one process (torch is imported once, not once per command) and writes, per command,
its exit code, stdout and stderr.

What a core install lacks is computed from the installed metadata, not listed by hand: every distribution the extras
pull in (transitively: FlagEmbedding brings peft, which imports accelerate) that the core requirements (with the
Quickstart's ``minilm`` extra) do not. Their modules are set to None in ``sys.modules`` -- what Python itself reports
as absent: ``import`` raises ModuleNotFoundError and ``importlib.util.find_spec`` answers None -- and their
distributions are hidden from ``importlib.metadata``, which libraries such as sentence-transformers consult before
importing an optional package.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import sys
from collections.abc import Iterable, Iterator

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: the extras a Quickstart install has (README: pip install ".[minilm]")
QUICKSTART_EXTRAS = ("minilm",)
#: extras that only add a variant of a core package (faiss-gpu provides the same ``faiss`` module as faiss-cpu)
NOT_SIMULATED = ("gpu", "test", "hpo")


def _requirements(dist: importlib.metadata.Distribution, extras: Iterable[str]) -> list[Requirement]:
    out = []
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
            out.append(req)
    return out


def _closure(roots: Iterable[Requirement]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        try:
            dist = importlib.metadata.distribution(req.name)
        except importlib.metadata.PackageNotFoundError:
            continue
        seen.add(name)
        todo.extend(_requirements(dist, req.extras))
    return seen


def missing_in_core() -> set[str]:
    """Distributions the extras bring in that a Quickstart install does not have."""
    rrbench = importlib.metadata.distribution("rrbench")
    core = _closure(_requirements(rrbench, QUICKSTART_EXTRAS))
    extras = [e for e in rrbench.metadata.get_all("Provides-Extra") or []
              if e not in QUICKSTART_EXTRAS and e not in NOT_SIMULATED]
    wanted = [r for r in _requirements(rrbench, extras) if r not in _requirements(rrbench, ())]
    return _closure(wanted) - core


def _modules(dist: importlib.metadata.Distribution) -> set[str]:
    """Top-level import names a distribution provides (``top_level.txt``, else its RECORD)."""
    top = dist.read_text("top_level.txt")
    if top:
        return {line.strip() for line in top.splitlines() if line.strip().isidentifier()}
    names = set()
    for file in dist.files or []:
        first = file.parts[0]
        if first.endswith((".dist-info", ".data")) or first in ("..", "__pycache__") or "." in first.removesuffix(".py"):
            continue
        names.add(first.removesuffix(".py"))
    return names


def block_extras() -> list[str]:
    """Make this process see a core install; returns the modules blocked."""
    hidden = missing_in_core()
    modules = sorted({m for name in hidden for m in _modules(importlib.metadata.distribution(name))})
    for module in modules:
        sys.modules[module] = None  # type: ignore[assignment]
    discover = importlib.metadata.Distribution.discover.__func__  # type: ignore[attr-defined]

    def visible(cls: type, **kwargs: object) -> Iterator[importlib.metadata.Distribution]:
        for dist in discover(cls, **kwargs):
            if canonicalize_name(dist.metadata["Name"] or "") not in hidden:
                yield dist

    importlib.metadata.Distribution.discover = classmethod(visible)  # type: ignore[method-assign,assignment]
    return modules


def main(argv: list[str]) -> int:
    blocked = block_extras()
    from rrbench.cli.main import main as rrbench_main  # after blocking, as a fresh process would import it

    with open(argv[0], encoding="utf-8") as handle:
        commands = json.load(handle)
    results = []
    for args in commands:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = rrbench_main(list(args))
            except SystemExit as exc:  # a command that exits on its own
                code = int(exc.code or 0)
        results.append({"args": args, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
        leaked = [m for m in blocked if sys.modules.get(m) is not None]
        if leaked:
            results[-1]["leaked"] = leaked
    with open(argv[1], "w", encoding="utf-8") as handle:
        json.dump({"blocked": blocked, "results": results}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
