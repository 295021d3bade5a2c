"""Error types that map onto the CLI's exit codes.

Users script rrbench in CI, so the exit status has to mean something: 2 is always "you asked for something that
cannot be done as asked" (bad input, unknown id, missing weights), 1 is "it broke while running" (a plugin returned
NaN, ran out of memory, ...). Every error carries a one-line message that names the file, field, id or plugin at fault.
"""

from __future__ import annotations

import difflib
import errno
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path


class RRBenchError(Exception):
    """Base class; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class UsageError(RRBenchError):
    """Bad input or usage: unknown id, malformed spec, missing file or weights. Exit code 2."""

    exit_code = 2


class TaskSpecError(UsageError):
    """A task spec or one of its data files is invalid."""


class UnknownComponentError(UsageError):
    """An id that no plugin registered."""


class MissingWeightsError(UsageError):
    """Model weights are not available locally and cannot be downloaded."""


class PluginError(RRBenchError):
    """A plugin misbehaved at run time (NaN scores, wrong count, exception). Exit code 1."""


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> str:
    """Format a 'did you mean' suffix, or an empty string when nothing is close."""
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=n, cutoff=0.5)
    return f" Did you mean: {', '.join(matches)}?" if matches else ""


#: OSErrors that come from the user's files and locations (a read-only or full disk, a missing or unreadable path),
#: not from a bug: reported as one line naming the path, exit 2.
USER_OS_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.ENOENT, errno.EISDIR,
                  errno.ENOTDIR, errno.ENAMETOOLONG, errno.EEXIST, errno.ENOTEMPTY}


def os_error_message(exc: OSError) -> str | None:
    """A one-line message for an OSError the user can fix (None for anything else)."""
    if exc.errno not in USER_OS_ERRNOS:
        return None
    where = exc.filename if exc.filename is not None else "a file"
    return f"{where}: {exc.strerror or exc}"


def write_crash_log(text: str, preferred: Path | None = None) -> Path | None:
    """Keep the traceback of an unexpected error in a log file (``preferred``, else the temp folder) so the user
    sees one line and can still send the details; None when no location is writable."""

    candidates = [preferred] if preferred is not None else []
    candidates.append(Path(tempfile.gettempdir()) / "rrbench-logs")
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None
