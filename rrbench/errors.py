"""Error types that map onto the CLI's exit codes.

Users script rrbench in CI, so the exit status has to mean something: 2 is always "you asked for something that
cannot be done as asked" (bad input, unknown id, missing weights), 1 is "it broke while running" (a plugin returned
NaN, ran out of memory, ...). Every error carries a one-line message that names the file, field, id or plugin at fault.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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
