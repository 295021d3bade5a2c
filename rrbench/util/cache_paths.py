"""Where rrbench keeps its caches on this machine.

One root holds the score cache, embeddings, candidate sets, runtime exports and crash logs, so that one variable
(``$RRBENCH_CACHE``) moves or disables all of them together.
"""

from __future__ import annotations

import os
from pathlib import Path

from rrbench.util.errors import UsageError

#: Values of ``$RRBENCH_CACHE`` that turn every cache off.
_OFF = {"off", "0", "none", "false", "no"}


def cache_root() -> Path:
    """The one place the cache root is resolved: ``$RRBENCH_CACHE``, else ``$XDG_CACHE_HOME/rrbench``, else
    ``~/.cache/rrbench``. A root that exists but is not a directory is a user error (exit 2), named here instead of
    as a traceback from deep inside SQLite."""
    env = os.environ.get("RRBENCH_CACHE", "").strip()
    if env and env.lower() not in _OFF:
        root = Path(env).expanduser()
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "rrbench"
    check_cache_dir(root, "RRBENCH_CACHE" if env else "cache root")
    return root


def check_cache_dir(path: Path, what: str) -> None:
    """Refuse a cache location that exists but is not a folder."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path} is not a directory")


def cache_disabled_by_env() -> bool:
    """``RRBENCH_CACHE=off`` (or ``0``/``none``/``false``/``no``) turns every cache off."""
    return means_off(os.environ.get("RRBENCH_CACHE", ""))


def means_off(value: object) -> bool:
    """Whether a cache location given by the user (``--cache-dir``, ``$RRBENCH_CACHE``) says "no cache"."""
    return str(value).strip().lower() in _OFF
