"""Where rrbench keeps its caches on this machine.

One root holds the score cache, embeddings, candidate sets, runtime exports and crash logs, so that one variable
(``$RRBENCH_CACHE``) moves or disables all of them together. The score cache alone may also live in a database
shared by many machines (``$RRBENCH_CACHE=postgresql://...``); everything else describes this machine's files and
stays local, under ``$XDG_CACHE_HOME/rrbench`` then.
"""

from __future__ import annotations

import os
from pathlib import Path

from rrbench.util.errors import UsageError

#: Values of ``$RRBENCH_CACHE`` that turn every cache off.
_OFF = {"off", "0", "none", "false", "no"}
#: URL schemes that name a database score store instead of a folder.
_DATABASE_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgres://")


def cache_root() -> Path:
    """The one place the cache root is resolved: ``$RRBENCH_CACHE``, else ``$XDG_CACHE_HOME/rrbench``, else
    ``~/.cache/rrbench``. A root that exists but is not a directory is a user error (exit 2), named here instead of
    as a traceback from deep inside SQLite."""
    env = os.environ.get("RRBENCH_CACHE", "").strip()
    if is_database_url(env):  # the scores live in a database; this machine's own caches stay local
        env = ""
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


def is_database_url(value: object) -> bool:
    """Whether a cache location (``--cache-dir``, ``$RRBENCH_CACHE``) names a database rather than a folder."""
    return str(value or "").strip().lower().startswith(_DATABASE_SCHEMES)


def database_from_env() -> str | None:
    """``$RRBENCH_CACHE`` when it names a database score store, else None."""
    value = os.environ.get("RRBENCH_CACHE", "").strip()
    return value if is_database_url(value) else None


#: Score-cache commits made by this process, so that an interrupted command says truthfully whether what it computed
#: was kept (a ``--no-cache`` run keeps nothing).
_SCORE_COMMITS = [0]


def note_scores_committed() -> None:
    _SCORE_COMMITS[0] += 1


def scores_committed() -> bool:
    """Whether this process committed any score to a score cache."""
    return _SCORE_COMMITS[0] > 0
