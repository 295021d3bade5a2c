"""The task spec (``task.yaml``): a strict, versioned description of a benchmark task.

Unknown fields are rejected, so a typo in a user's private spec fails loudly instead of silently using a default.
See ``tasks/README.md`` for the format with a worked example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rrbench.util.errors import TaskSpecError
from rrbench.util.strict_yaml import read_yaml_document, validate_document

#: The spec file of a task folder.
SPEC_FILENAME = "task.yaml"

SUPPORTED_MAIN_SCORES = ("nDCG@10", "RR@10", "R@10")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataFile(_Strict):
    """A data file beside the spec, checked against its sha256 at load."""

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class TaskFiles(_Strict):
    posts: DataFile
    queries: DataFile
    qrels: DataFile


class SplitSpec(_Strict):
    """How queries are assigned to splits.

    ``grouped``: groups of queries that share a post or a criterion stay in one split. The assignment is computed
    from ``seed`` and ``fractions`` unless an ``assignment`` file is given (which then wins and is checked).
    ``assigned``: the ``assignment`` file is the only source.
    """

    method: Literal["grouped", "assigned"] = "grouped"
    seed: int = 13
    fractions: dict[str, float] | None = None
    assignment: DataFile | None = None

    @model_validator(mode="after")
    def _check(self) -> SplitSpec:
        if self.method == "assigned" and self.assignment is None:
            raise ValueError("method 'assigned' needs an 'assignment' file")
        if self.method == "grouped" and self.fractions is None and self.assignment is None:
            raise ValueError("method 'grouped' needs 'fractions' (or an 'assignment' file)")
        if self.fractions is not None:
            if not self.fractions:
                raise ValueError("'fractions' is empty")
            if any(v <= 0 for v in self.fractions.values()):
                raise ValueError("every fraction must be > 0")
            total = sum(self.fractions.values())
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"fractions must sum to 1, got {total:.6f}")
        return self


class ArchivedVersion(_Strict):
    """An earlier version of the task: records made on it stay listed (archived, not re-verified)."""

    version: int = Field(ge=1)
    data_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class TaskSpec(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: int = Field(ge=1)
    description: str = ""
    scope: Literal["post", "corpus"] = "post"
    #: what a candidate is: a sentence of a post, or a whole document (one text per post, docno = post_id; BEIR)
    unit: Literal["sentence", "document"] = "sentence"
    main_score: str = "nDCG@10"
    license: str
    citation: str = ""
    attribution: str = ""
    files: TaskFiles
    splits: SplitSpec
    #: the versions this one superseded, with their data hashes: a board keeps their records as archived, and a
    #: record of any other earlier version is refused (it names data that never existed)
    archived_versions: list[ArchivedVersion] = Field(default_factory=list)

    @field_validator("main_score")
    @classmethod
    def _known_score(cls, value: str) -> str:
        if value not in SUPPORTED_MAIN_SCORES:
            raise ValueError(f"main_score must be one of {', '.join(SUPPORTED_MAIN_SCORES)}")
        return value


def read_spec(path: str | Path) -> TaskSpec:
    """Parse and validate a ``task.yaml``; every problem becomes a one-line :class:`TaskSpecError`."""
    path = Path(path)
    raw = read_yaml_document(path, "task spec", TaskSpecError)
    return validate_document(TaskSpec, raw, path, "task spec", TaskSpecError)
