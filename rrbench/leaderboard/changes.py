"""Which published records a change touches, from git: what a leaderboard's CI re-scores and reproduces.

Re-scoring every record of a large board on every pull request would cost minutes per record; a record that did not
change was checked when it was added. ``check --rescore N --base REV`` therefore re-scores only the record folders
with a file added or modified since ``REV`` (committed, staged, or not yet tracked).
"""

from __future__ import annotations

from pathlib import Path

from rrbench.records.schema import RESULTS_FILE
from rrbench.util.git import git


def changed_record_folders(leaderboard_dir: str | Path, base: str) -> set[Path]:
    """The record folders under ``leaderboard_dir`` with a file changed since git revision ``base``."""
    root = Path(leaderboard_dir).resolve()
    top = Path(git(root, "rev-parse", "--show-toplevel").strip()).resolve()
    changed = git(top, "diff", "--name-only", "--no-renames", base, "--", str(root)).splitlines()
    changed += git(top, "ls-files", "--others", "--exclude-standard", "--", str(root)).splitlines()
    folders = set()
    for name in changed:
        path = (top / name).resolve()
        for parent in path.parents:
            if parent == root:
                break
            if (parent / RESULTS_FILE).is_file():
                folders.add(parent)
                break
    return folders


__all__ = ["changed_record_folders"]
