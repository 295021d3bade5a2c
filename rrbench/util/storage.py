"""One place that turns a storage URL into an Optuna storage.

Every study rrbench runs (Tier A sweeps, Tier B training HPO, the matrix's own cell queue) lives in an Optuna storage
named by a URL, so that one machine and a cluster run the same code: the default is a SQLite file in the output
folder; many machines share a PostgreSQL database; where no database server exists, Optuna's journal file on a
shared file system does. Workers coordinate only through this storage, so whatever opens it must behave the same
for every command, which is why this is one function and not a line in each command.

Accepted URLs (documented in docs/matrix.md):

- none given: ``sqlite:///<default_path>`` (the output folder's study file);
- ``sqlite:///relative/or/absolute/path.sqlite`` (SQLAlchemy's form: three slashes then the path);
- ``postgresql+psycopg://user:password@host:port/database`` (``postgresql://`` is read as the same, with psycopg 3);
- ``journal:///absolute/path/file.log`` or ``journal:relative/path.log`` (Optuna's JournalStorage with a file
  backend and its NFS-safe symlink lock).

With ``heartbeat=True`` a database storage gets Optuna's heartbeat: a trial whose worker died (kill -9, a lost node)
stops sending heartbeats, is marked failed after the grace period by the next worker that looks, and is re-enqueued
by ``RetryHeartbeatStaleTrialCallback``. Heartbeats are sent only for trials run inside ``study.optimize()``.
The journal storage has no heartbeat in Optuna; there a killed worker's trial stays RUNNING (docs/matrix.md says how
to fail it by hand).
"""

from __future__ import annotations

import os
import re
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from rrbench.util.env import positive_env_number
from rrbench.util.errors import UsageError
from rrbench.util.extras import check_extra, missing_extra
from rrbench.util.faults import kill_point

if TYPE_CHECKING:  # optuna is imported only when a storage is opened
    import optuna

#: Seconds between heartbeats of a running trial, and how long a silent trial may stay RUNNING before another worker
#: declares it stale. Overridable with RRBENCH_HEARTBEAT_INTERVAL / RRBENCH_HEARTBEAT_GRACE (tests shorten them).
HEARTBEAT_INTERVAL_S = 30
HEARTBEAT_GRACE_S = 120
#: How many times a stale trial is re-enqueued before it is left failed.
HEARTBEAT_MAX_RETRY = 3
#: Seconds to wait for a database server before giving up with a one-line error.
CONNECT_TIMEOUT_S = 10

SUPPORTED_FORMS = ("sqlite:///PATH", "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB", "journal:///PATH")


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***``, for messages and logs (user, host and database stay)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)
    if parts.password is None or "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def scrub_message(message: object, url: str) -> str:
    """One line of a driver's error message with any trace of the password removed."""
    line = " ".join(str(message).split())
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        line = line.replace(password, "***")
    return line[:300]


_scrub = scrub_message


def psycopg_url(url: str) -> str:
    """``url`` as psycopg itself reads it: ``postgresql+psycopg://`` and ``postgres://`` become ``postgresql://``
    (the driver suffix is SQLAlchemy's notation, which the score store accepts too so one URL serves both)."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme.split("+", 1)[0].lower() not in ("postgresql", "postgres"):
        raise UsageError(f"{redact_url(url)!r} is not a PostgreSQL URL; use postgresql://USER:PASSWORD@HOST:PORT/DB")
    return "postgresql://" + rest


def _heartbeat_settings() -> tuple[int, int]:
    def read(name: str, default: int) -> int:
        return int(positive_env_number(name, default, whole=True, unit="seconds"))

    interval = read("RRBENCH_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL_S)
    return interval, read("RRBENCH_HEARTBEAT_GRACE", max(HEARTBEAT_GRACE_S, 2 * interval))


def _journal_path(url: str) -> Path:
    rest = url[len("journal:"):]
    if rest.startswith("///"):
        path = rest[2:]  # journal:///abs/path -> /abs/path
    elif rest.startswith("//"):
        raise UsageError(f"journal storage URL {url!r}: use journal:///absolute/path.log or journal:relative/path.log")
    else:
        path = rest
    if not path:
        raise UsageError(f"journal storage URL {url!r} names no file; use journal:///absolute/path.log")
    return Path(path)


def normalise_url(url: str | None, default_path: Path | None) -> str:
    """The storage URL actually used: the default SQLite file, or ``url`` with ``postgresql://`` made explicit."""
    if url is None or not url.strip():
        if default_path is None:
            raise UsageError("no storage URL given and no default study file")
        return f"sqlite:///{Path(default_path)}"
    url = url.strip()
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def open_storage(url: str | None, default_path: Path | None, heartbeat: bool = False) -> optuna.storages.BaseStorage:
    """Open (creating if needed) the Optuna storage named by ``url``, or SQLite at ``default_path`` when none.

    Raises ``UsageError`` (exit 2) for an unsupported URL, a missing driver, or a database that cannot be reached,
    naming the URL without its password. ``heartbeat`` turns on Optuna's heartbeat and the retry of stale trials
    (database storages only; see the module docstring).
    """
    full = normalise_url(url, default_path)
    shown = redact_url(full)
    import optuna  # lazy: opening a storage is the first thing that needs it

    # lazy: optional: only sweeps and the matrix use it
    from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback

    if full.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend  # lazy: optional: only sweeps and the matrix use it

        path = _journal_path(full)
        if not path.parent.is_dir():
            raise UsageError(f"journal storage {shown}: folder {path.parent} does not exist")
        try:
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise UsageError(f"journal storage {shown}: {_scrub(exc, full)}") from None

    scheme = full.split(":", 1)[0].lower()
    engine_kwargs: dict = {}
    if scheme == "sqlite":
        target = full[len("sqlite:///"):] if full.startswith("sqlite:///") else ""
        if not target:
            raise UsageError(f"storage URL {shown!r}: use sqlite:///path/to/study.sqlite")
        if target != ":memory:":
            folder = Path(target).parent
            if url is None or not str(url).strip():
                folder.mkdir(parents=True, exist_ok=True)
            elif not folder.is_dir():
                raise UsageError(f"storage {shown}: folder {folder} does not exist")
        engine_kwargs = {"connect_args": {"timeout": 60}}
    elif scheme.startswith("postgresql"):
        check_extra("postgres", "psycopg", f"storage {shown}")
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    elif scheme.startswith("mysql"):
        engine_kwargs = {"pool_pre_ping": True}
    else:
        raise UsageError(f"unsupported storage URL {shown!r}; use one of: {', '.join(SUPPORTED_FORMS)}")

    hb: dict = {}
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.8; we rely on them knowingly
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            if heartbeat:
                interval, grace = _heartbeat_settings()
                hb = {"heartbeat_interval": interval, "grace_period": grace,
                      "heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(max_retry=HEARTBEAT_MAX_RETRY)}
            return _with_kill_points(_rdb_storage(RDBStorage, full, engine_kwargs, hb))
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("psycopg"):
            raise missing_extra("postgres", exc.name, f"storage {shown}") from None
        raise UsageError(f"storage {shown} needs the Python package {exc.name!r}, which is not installed") from None
    except Exception as exc:  # sqlalchemy's OperationalError, ArgumentError, psycopg errors ...
        reason = _scrub(getattr(exc, "orig", None) or exc, full)
        raise UsageError(f"cannot open study storage {shown}: {reason}") from None


def _rdb_storage(cls: type, url: str, engine_kwargs: dict, heartbeat: dict, attempts: int = 4) -> Any:
    """``cls(url, ...)``, retried when workers started together on a fresh database race to create Optuna's tables
    (PostgreSQL then refuses the loser's ``CREATE`` with "already exists"; the winner's tables serve both)."""
    for attempt in range(1, attempts + 1):
        try:
            return cls(url, engine_kwargs=engine_kwargs, **heartbeat)
        except Exception as exc:  # sqlalchemy's IntegrityError / ProgrammingError wrapping psycopg's
            if attempt == attempts or "already exists" not in str(getattr(exc, "orig", None) or exc):
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def _with_kill_points(storage: optuna.storages.RDBStorage) -> optuna.storages.RDBStorage:
    """Test-only kill points (``rrbench.util.faults``) inside the transactions Optuna writes a study with:
    ``study-commit`` just before one commits, ``study-committed`` just after. Attached only when a test asks for
    kill points, so an ordinary run pays nothing."""
    if not (os.environ.get("RRBENCH_TEST_KILL_AT") or os.environ.get("RRBENCH_TEST_TRACE_KILL_POINTS")):
        return storage
    from sqlalchemy import event  # lazy: sqlalchemy comes with optuna and costs 0.15 s to import

    event.listen(storage.engine, "commit", lambda connection: kill_point("study-commit"))
    event.listen(storage.scoped_session, "after_commit", lambda session: kill_point("study-committed"))
    return storage
