"""The few git questions the leaderboard's CI asks: where the repository's top is, and what a file held at a base
revision. One place, so every caller gets the same one-line error outside a repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

from rrbench.util.errors import UsageError


def git(root: Path, *args: str) -> str:
    """``git -C root ARGS``'s output; a failure is one line naming the command."""
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise UsageError(f"git {' '.join(args[:2])} in {root}: {done.stderr.strip() or 'failed'}")
    return done.stdout


def repository_top(path: Path, base: str) -> Path:
    """The top folder of the repository holding ``path`` (which need not exist yet)."""
    folder = path if path.is_dir() else path.parent
    done = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if done.returncode != 0:
        raise UsageError(f"--base {base}: {folder} is not inside a git repository")
    return Path(done.stdout.strip()).resolve()


def file_at_revision(path: str | Path, base: str) -> str | None:
    """The text of ``path`` at git revision ``base``; None when the file did not exist there (it is new)."""
    path = Path(path)
    top = repository_top(path, base)
    relative = path.resolve().relative_to(top).as_posix()
    shown = subprocess.run(["git", "-C", str(top), "show", f"{base}:{relative}"], capture_output=True, text=True)
    if shown.returncode != 0:
        if "does not exist" in shown.stderr or "exists on disk, but not in" in shown.stderr:
            return None
        raise UsageError(f"--base {base}: cannot read {relative} at that revision ({shown.stderr.strip()})")
    return shown.stdout
