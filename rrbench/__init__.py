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
    OptionSpec,
    RegimeSpec,
    RerankerSpec,
    RetrieverSpec,
    TaskRef,
)

__version__ = "0.1.0"

__all__ = [
    "FuserSpec", "LossSpec", "MinerSpec", "OptionSpec", "RegimeSpec", "RerankerSpec", "RetrieverSpec", "TaskRef",
    "__version__", "build_leaderboard", "evaluate", "get_reranker", "get_retriever", "get_task", "hookimpl",
    "publish", "reproduce", "run",
]

if TYPE_CHECKING:
    from rrbench.tasks import Task


def get_task(name_or_path: str) -> "Task":
    """Load a task by registered id or by path to a task directory."""
    from rrbench.tasks import get_task as _get_task

    return _get_task(name_or_path)


def get_reranker(name: str, model_path: str | None = None, cache: bool | str = False, **options: Any):
    """Instantiate a reranker by id, alias, hub id or local path (see ``rrbench.models.load_reranker``).

    ``model_path`` pairs a registered spec (template, score kind, options) with local weights. ``cache=True`` (or a
    cache directory) answers repeated pairs from the score cache, like ``rrbench run`` does.
    """
    from rrbench.models import load_reranker

    reranker = load_reranker(name, model_path=model_path, **options)
    if cache:
        from rrbench.cache import ScoreCache, wrap

        reranker = wrap(reranker, ScoreCache(None if cache is True else cache))
    return reranker


def get_retriever(name: str, **options: Any):
    from rrbench.retrievers import load_retriever

    return load_retriever(name, **options)


def run(**kwargs: Any):
    """Run an evaluation, like ``rrbench run``; returns the result record (a dict). See ``rrbench.runner.RunConfig``."""
    from rrbench.runner import RunConfig, execute

    return execute(RunConfig(**kwargs))


def evaluate(run: str, task: str = "scifact-evidence", split: str = "dev_select", threshold: float | None = None,
             output: str | None = None) -> dict[str, Any]:
    """Score a TREC run file made by any system, like ``rrbench evaluate``; returns the result record."""
    from rrbench.evaluation import evaluate_run

    return evaluate_run(task=task, split=split, run=run, threshold=threshold, output=output)


def reproduce(record_dir: str, **kwargs: Any) -> dict[str, Any]:
    """Re-run a result record and compare metrics, like ``rrbench reproduce`` (see ``rrbench.reproduction.reproduce``)."""
    from rrbench.reproduction import reproduce as _reproduce

    return _reproduce(record_dir, **kwargs)


def publish(record_dir: str, leaderboard_dir: str = "leaderboard", replace: bool = False) -> str:
    """Check a record and add it to the leaderboard, like ``rrbench publish``; returns the published folder."""
    from rrbench.leaderboard import publish as _publish

    return str(_publish(record_dir, leaderboard_dir, replace=replace))


def build_leaderboard(leaderboard_dir: str = "leaderboard") -> str:
    """Regenerate ``leaderboard/README.md`` from the published records, like ``rrbench leaderboard build``."""
    from rrbench.leaderboard import build

    return str(build(leaderboard_dir))
