"""Strict YAML documents validated by pydantic models: the task spec and the matrix file share this path.

Both are hand-written by users, so every problem has to come back as one line naming the file and the field, and
a typo (an unknown field) is an error rather than a silently ignored setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from rrbench.util.errors import UsageError
import yaml

Model = TypeVar("Model", bound=BaseModel)

#: pydantic's error types that read better in a user's words.
_PLAIN_WORDS = {"extra_forbidden": "unknown field", "missing": "required field is missing",
                "too_short": "must not be empty"}


def describe_validation_error(exc: ValidationError) -> str:
    """Every problem of ``exc`` as ``field 'a.b': what is wrong``, joined on one line."""
    parts = []
    for err in exc.errors():
        location = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"field '{location}': {_PLAIN_WORDS.get(err['type'], err['msg'])}")
    return "; ".join(parts)


def read_yaml_document(path: Path, what: str, error: type[UsageError] = UsageError) -> Any:
    """The parsed document of ``path`` (``None`` for an empty file); a missing file, bad UTF-8 or bad YAML is one
    ``error`` naming the file, the ``what`` (``task spec``, ``matrix file``) and, for YAML, the line."""

    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise error(f"{path}: malformed YAML{line}: {getattr(exc, 'problem', exc)}") from None


def validate_document(model: type[Model], raw: Any, path: Path, what: str,
                      error: type[UsageError] = UsageError) -> Model:
    """``raw`` as an instance of ``model``; anything but a mapping, or any invalid field, is one ``error``."""
    if not isinstance(raw, dict):
        raise error(f"{path}: a {what} must be a YAML mapping, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error(f"{path}: invalid {what}: {describe_validation_error(exc)}") from None
