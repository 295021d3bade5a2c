"""How a board is judged: the correction of the tests against the leader and the cross-task non-inferiority margin.

Why a file (``board.yaml`` beside the records): ``leaderboard check`` rebuilds README.md and compares it byte for
byte, so what ``leaderboard build --method ... --margin ...`` was told must be readable by the check as well; a
flag that lived only on one command line made an honest board built with ``--method tukey`` fail its own CI. The
file is optional (absent: the defaults), strict (an unknown key or a margin outside [0, 1] is one error naming the
file), and, because loosening the margin is how a submitter would turn "no" into "holds everywhere",
``check --base REV`` refuses a change to it that comes with changed records: a maintainer changes the settings in
a change of their own.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rrbench.leaderboard.cross_task import MARGIN
from rrbench.records.schema import RecordError
from rrbench.util.git import file_at_revision
from rrbench.util.io import atomic_write_text
from rrbench.util.strict_yaml import loads_yaml, read_yaml_mapping, validate_document

SETTINGS_FILE = "board.yaml"


class BoardSettings(BaseModel):
    #: strict: a quoted "0.05" or a ``true`` is a mistake to name, not a number to guess
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    #: correction of every row's test against the leader
    method: Literal["holm", "tukey"] = "holm"
    #: the "holds everywhere" non-inferiority margin on the main score, per task
    noninferiority_margin: float = Field(default=MARGIN, ge=0.0, le=1.0)

    @field_validator("noninferiority_margin")
    @classmethod
    def _finite(cls, value: float) -> float:
        if math.isnan(value):
            raise ValueError("must be a number within [0, 1]")
        return value

    def to_yaml(self) -> str:
        return f"method: {self.method}\nnoninferiority_margin: {self.noninferiority_margin!r}\n"


def settings_path(leaderboard_dir: str | Path) -> Path:
    return Path(leaderboard_dir) / SETTINGS_FILE


def parse_settings(path: Path, raw: object) -> BoardSettings:
    return validate_document(BoardSettings, raw, path, "board settings file", RecordError)


def read_settings(leaderboard_dir: str | Path) -> BoardSettings:
    """The board's settings; the defaults when it has no ``board.yaml``."""
    path = settings_path(leaderboard_dir)
    if not path.exists():
        return BoardSettings()
    return parse_settings(path, read_yaml_mapping(path, "board settings file", RecordError))


def update_settings(leaderboard_dir: str | Path, method: str | None = None,
                    margin: float | None = None) -> BoardSettings:
    """The settings with what the build command was given; written back (atomically) when that changes them."""
    current = read_settings(leaderboard_dir)
    changes = {k: v for k, v in (("method", method), ("noninferiority_margin", margin)) if v is not None}
    if not changes:
        return current
    path = settings_path(leaderboard_dir)
    updated = parse_settings(path, {**current.model_dump(), **changes})
    if updated != current or (not path.exists() and updated != BoardSettings()):
        atomic_write_text(path, updated.to_yaml())
    return updated


def settings_change(leaderboard_dir: str | Path, base: str) -> str | None:
    """How the board's settings differ from those at git revision ``base`` (``"method holm -> tukey"``); None when
    they do not."""
    path = settings_path(leaderboard_dir)
    earlier_text = file_at_revision(path, base)
    earlier = BoardSettings() if earlier_text is None else parse_settings(
        path, loads_yaml(earlier_text, f"{path} at {base}", RecordError) or {})
    now = read_settings(leaderboard_dir)
    changed = [f"{name} {getattr(earlier, name)} -> {getattr(now, name)}" for name in BoardSettings.model_fields
               if getattr(earlier, name) != getattr(now, name)]
    return ", ".join(changed) or None
