"""Run rrbench commands the way the Quickstart's install sees them: every optional extra's modules unimportable.

``python -m tests.support.core_only COMMANDS.json RESULTS.json`` runs each argument list of COMMANDS.json through
``rrbench.cli.main`` in this one process (torch is imported once, not once per command) and writes, per command,
its exit code, stdout and stderr. A module set to None in ``sys.modules`` is what Python itself reports as absent:
``import`` raises ModuleNotFoundError and ``importlib.util.find_spec`` answers None, so libraries that probe for
optional packages (transformers, sentence-transformers) behave as on a machine without them.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import sys
from collections.abc import Iterator

from rrbench.util.extras import EXTRAS

#: what a core install (the Quickstart's ``.[minilm]``) lacks; faiss stays, since faiss-cpu is core
CORE_ONLY_BLOCKED = sorted({m for extra, (modules, _) in EXTRAS.items() if extra not in ("minilm", "gpu")
                            for m in modules} | {"psycopg_binary", "psycopg_c"})


#: their distributions, hidden from importlib.metadata too (sentence-transformers asks the metadata whether
#: ``datasets`` is installed, then imports it)
BLOCKED_DISTRIBUTIONS = {"onnxruntime", "onnx", "openvino", "nncf", "flagembedding", "psycopg", "psycopg-binary",
                         "psycopg-c", "datasets", "pyarrow"}


def block_extras() -> None:
    for module in CORE_ONLY_BLOCKED:
        sys.modules[module] = None  # type: ignore[assignment]
    discover = importlib.metadata.Distribution.discover.__func__  # type: ignore[attr-defined]

    def visible(cls: type, **kwargs: object) -> Iterator[importlib.metadata.Distribution]:
        for dist in discover(cls, **kwargs):
            name = (dist.metadata["Name"] or "").lower().replace("_", "-")
            if name not in BLOCKED_DISTRIBUTIONS:
                yield dist

    importlib.metadata.Distribution.discover = classmethod(visible)  # type: ignore[method-assign,assignment]


def main(argv: list[str]) -> int:
    block_extras()
    from rrbench.cli.main import main as rrbench_main  # after blocking, as a fresh process would import it

    commands = json.loads(open(argv[0], encoding="utf-8").read())
    results = []
    for args in commands:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = rrbench_main(list(args))
            except SystemExit as exc:  # a command that exits on its own
                code = int(exc.code or 0)
        results.append({"args": args, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
        leaked = [m for m in CORE_ONLY_BLOCKED if sys.modules.get(m) is not None]
        if leaked:
            results[-1]["leaked"] = leaked
    with open(argv[1], "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
