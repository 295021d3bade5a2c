"""The Python API: one function per ``rrbench`` command a script needs, with the command's defaults.

``import rrbench`` stays cheap because ``rrbench/__init__`` forwards these names here on first use. Heavy libraries
(torch, transformers) load only when a model is actually used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rrbench.leaderboard.board import build
from rrbench.leaderboard.board import publish as publish_record
from rrbench.leaderboard.outside_runs import evaluate_run
from rrbench.leaderboard.reproduce import reproduce as reproduce_record
from rrbench.models.factory import load_reranker
from rrbench.pipeline.candidates import Candidates, GeneratorConfig, generate
from rrbench.pipeline.runner import RunConfig, execute
from rrbench.pipeline.score_cache import open_store, wrap
from rrbench.retrievers.factory import load_retriever
from rrbench.tasks.resolve import Task
from rrbench.tasks.resolve import get_task as _load_task

__all__ = ["build_leaderboard", "evaluate", "get_candidates", "get_reranker", "get_retriever", "get_task", "publish",
           "reproduce", "run"]


def get_task(name_or_path: str) -> Task:
    """Load a task by registered id or by path to a task directory."""
    return _load_task(name_or_path)


def get_reranker(name: str, model_path: str | None = None, cache: bool | str = False, **options: Any) -> Any:
    """Instantiate a reranker by id, alias, hub id or local path (see ``rrbench.models.factory.load_reranker``).

    ``model_path`` pairs a registered spec (template, score kind, options) with local weights. ``cache=True`` (or a
    cache directory) answers repeated pairs from the score cache, like ``rrbench run`` does.
    """
    reranker = load_reranker(name, model_path=model_path, **options)
    if cache:
        reranker = wrap(reranker, open_store(None if cache is True else cache))
    return reranker


def get_retriever(name: str, **options: Any) -> Any:
    """Instantiate a retriever by id or alias; call ``index(texts)`` before scoring."""
    return load_retriever(name, **options)


def get_candidates(task: str, split: str = "dev_select", retriever: str | Sequence[str] = "bm25",
                   fusion: str | None = None, top_k: int = 100, **fusion_options: Any) -> Candidates:
    """Candidate pools of a split, like ``rrbench candidates``: ``.pools`` holds ``(global ids, scores)`` per query
    (queries in id order), ``.describe`` the generator."""
    loaded = _load_task(task)
    queries = sorted(loaded.split_queries(split), key=lambda q: q.query_id)
    retrievers = (retriever,) if isinstance(retriever, str) else tuple(retriever)
    return generate(loaded, split, queries, GeneratorConfig(retrievers, fusion, dict(fusion_options)), top_k)


def run(**kwargs: Any) -> dict[str, Any]:
    """Run an evaluation, like ``rrbench run``; returns the result record (a dict). See ``RunConfig``."""
    return execute(RunConfig(**kwargs))


def evaluate(run: str, task: str = "scifact-evidence", split: str = "dev_select", threshold: float | None = None,
             output: str | None = None) -> dict[str, Any]:
    """Score a TREC run file made by any system, like ``rrbench evaluate``; returns the result record."""
    return evaluate_run(task=task, split=split, run=run, threshold=threshold, output=output)


def reproduce(record_dir: str, **kwargs: Any) -> dict[str, Any]:
    """Re-run a result record and compare metrics, like ``rrbench reproduce``."""
    return reproduce_record(record_dir, **kwargs)


def publish(record_dir: str, leaderboard_dir: str = "leaderboard", replace: bool = False) -> str:
    """Check a record and add it to the leaderboard, like ``rrbench publish``; returns the published folder."""
    return str(publish_record(record_dir, leaderboard_dir, replace=replace))


def build_leaderboard(leaderboard_dir: str = "leaderboard") -> str:
    """Regenerate ``leaderboard/README.md`` from the published records, like ``rrbench leaderboard build``."""
    return str(build(leaderboard_dir))
