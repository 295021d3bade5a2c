"""rrbench: a plugin-based benchmark registry for rerankers (sentence-level evidence retrieval inside a post).

The Python API mirrors the CLI; heavy dependencies (torch, transformers) are imported only when a model is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rrbench.hookspecs import hookimpl
from rrbench.specs import (
    FuserSpec,
    LossSpec,
    MinerSpec,
    RegimeSpec,
    RerankerSpec,
    RetrieverSpec,
    TaskRef,
)

__version__ = "0.1.0"

__all__ = [
    "FuserSpec", "LossSpec", "MinerSpec", "RegimeSpec", "RerankerSpec", "RetrieverSpec", "TaskRef",
    "__version__", "get_reranker", "get_retriever", "get_task", "hookimpl", "run",
]

if TYPE_CHECKING:
    from rrbench.tasks import Task


def get_task(name_or_path: str) -> "Task":
    """Load a task by registered id or by path to a task directory."""
    from rrbench.tasks import get_task as _get_task

    return _get_task(name_or_path)


def get_reranker(name: str, **options: Any):
    """Instantiate a reranker by id, alias, hub id or local path (see ``rrbench.models.load_reranker``)."""
    from rrbench.models import load_reranker

    return load_reranker(name, **options)


def get_retriever(name: str, **options: Any):
    from rrbench.retrievers import load_retriever

    return load_retriever(name, **options)


def run(**kwargs: Any):
    """Run an evaluation, like ``rrbench run``; returns the result record (a dict). See ``rrbench.runner.RunConfig``."""
    from rrbench.runner import RunConfig, execute

    return execute(RunConfig(**kwargs))
