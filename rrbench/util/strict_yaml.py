"""The one YAML reader of rrbench, and pydantic validation of the documents it reads.

Task specs, matrix files, run configurations and search spaces are hand-written by users (or by whoever submits a
record), so every problem comes back as one line naming the file and, where it helps, the line or the field; a typo
(an unknown field) is an error rather than a silently ignored setting. Aliases are bounded: a few hundred bytes of
nested aliases (a "billion laughs" document) would otherwise expand to gigabytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from rrbench.util.errors import UsageError

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


#: Most aliases (``*name``) a document may use; hand-written files use a handful, an alias bomb thousands.
MAX_YAML_ALIASES = 100


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a document with more than :data:`MAX_YAML_ALIASES` aliases."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} aliases (refused: aliases can expand a small "
                                     f"file without bound)")
        return super().compose_node(parent, index)


def read_yaml_document(path: str | Path, what: str, error: type[UsageError] = UsageError) -> Any:
    """The parsed document of ``path`` (``None`` for an empty file); a missing file, bad UTF-8 or bad YAML is one
    ``error`` naming the file, the ``what`` (``task spec``, ``matrix file``) and, for YAML, the line."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{path}: {what} is a folder, not a file")
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    return loads_yaml(text, str(path), error)


def loads_yaml(text: str, where: str, error: type[UsageError] = UsageError) -> Any:
    """:func:`read_yaml_document` for text already in memory (``where`` names its origin in errors)."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise error(f"{where}: malformed YAML{line}: {getattr(exc, 'problem', None) or exc}") from None


def read_yaml_mapping(path: str | Path, what: str, error: type[UsageError] = UsageError) -> dict[str, Any]:
    """A YAML (or JSON) file holding a mapping; an empty file is an empty mapping."""
    data = read_yaml_document(path, what, error)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: a {what} holds a mapping, not {type(data).__name__}")
    return data


def validate_document(model: type[Model], raw: Any, path: Path, what: str,
                      error: type[UsageError] = UsageError) -> Model:
    """``raw`` as an instance of ``model``; anything but a mapping, or any invalid field, is one ``error``."""
    if not isinstance(raw, dict):
        raise error(f"{path}: a {what} must be a YAML mapping, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error(f"{path}: invalid {what}: {describe_validation_error(exc)}") from None
