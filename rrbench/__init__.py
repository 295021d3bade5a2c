"""rrbench: a plugin-based benchmark registry for rerankers (sentence-level evidence retrieval inside a post).

Two faces, both stable: :mod:`rrbench.plugin` for plugin authors (hooks, specs, base classes) and the Python API
below, which mirrors the CLI (``rrbench.run(reranker="minilm-l6")``). The API functions live in :mod:`rrbench.api`
and are imported on first use, so ``import rrbench`` (which every plugin does) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rrbench.components.hookspecs import hookimpl
from rrbench.components.specs import (
    CalibratorSpec,
    FuserSpec,
    LossSpec,
    MinerSpec,
    OptionSpec,
    RegimeSpec,
    RerankerSpec,
    RetrieverSpec,
    TaskRef,
)

__version__ = "0.1.0"

_API = ("build_leaderboard", "evaluate", "get_candidates", "get_reranker", "get_retriever", "get_task", "publish",
        "reproduce", "run")

__all__ = [
    "CalibratorSpec", "FuserSpec", "LossSpec", "MinerSpec", "OptionSpec", "RegimeSpec", "RerankerSpec",
    "RetrieverSpec", "TaskRef", "__version__", "build_leaderboard", "evaluate", "get_candidates", "get_reranker",
    "get_retriever", "get_task", "hookimpl", "publish", "reproduce", "run",
]

if TYPE_CHECKING:
    from rrbench.api import (
        build_leaderboard,
        evaluate,
        get_candidates,
        get_reranker,
        get_retriever,
        get_task,
        publish,
        reproduce,
        run,
    )


def __getattr__(name: str) -> Any:
    """Import the API functions of :mod:`rrbench.api` on first use."""
    if name in _API:
        return getattr(importlib.import_module("rrbench.api"), name)
    raise AttributeError(f"module 'rrbench' has no attribute {name!r}")
