"""Where task folders live: the built-in tasks shipped with rrbench, and the user's imported tasks."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def builtin_tasks_dir() -> Path:
    """``tasks/`` in a checkout, ``rrbench/builtin_tasks`` when installed."""

    try:
        return Path(str(resources.files("rrbench.builtin_tasks")))
    except ModuleNotFoundError:  # a source tree that was never installed: the folder is still next to the package
        return Path(__file__).resolve().parents[2] / "tasks"


def user_tasks_dir() -> Path:
    """Tasks created by ``rrbench tasks import-*`` (override with ``RRBENCH_TASKS_DIR``)."""
    default = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "rrbench" / "tasks"
    return Path(os.environ.get("RRBENCH_TASKS_DIR", default))
