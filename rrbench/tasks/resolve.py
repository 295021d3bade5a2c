"""Finding a task: a registered id or alias, or a task folder; loaded once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rrbench.components.registry import resolve
from rrbench.tasks.loader import (
    SPEC_FILENAME,
    Query,
    Task,
    candidate_text,
    candidate_texts,
    fold_split,
    load_task_dir,
    parse_fold_split,
)
from rrbench.tasks.splits import grouped_kfold, grouped_split

__all__ = ["Query", "Task", "candidate_text", "candidate_texts", "fold_split", "get_task", "grouped_kfold", "grouped_split", "load_task_dir",
           "parse_fold_split", "task_path"]


def task_path(name_or_path: str | Path) -> Path:
    """The directory of a registered task id/alias, or of a local task directory / ``task.yaml`` path."""
    candidate = Path(name_or_path)
    if candidate.is_dir() and (candidate / SPEC_FILENAME).is_file():
        return candidate.resolve()
    if candidate.is_file() and candidate.suffix in {".yaml", ".yml"}:
        return candidate.resolve()

    return Path(resolve("tasks", str(name_or_path)).spec.path)


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> Task:
    return load_task_dir(path)


def get_task(name_or_path: str | Path) -> Task:
    """Load (once per process) a task by registered id/alias or by path."""
    path = task_path(name_or_path)
    spec_file = path / SPEC_FILENAME if path.is_dir() else path
    mtime = spec_file.stat().st_mtime if spec_file.exists() else 0.0
    return _load_cached(str(path), mtime)
