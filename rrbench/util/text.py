"""How rrbench writes numbers and names for people: one formatter for numbers in tables, one for p-values, one slug
for folder names and one TREC run tag. Every table, summary and report uses these, so the same value never prints
two ways."""

from __future__ import annotations

import math
import re
from typing import Any

_NOT_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def fmt_number(value: Any, digits: int = 4, missing: str = "-") -> str:
    """A number with ``digits`` decimals; ``missing`` for None or a value that is not finite. Text passes through."""
    if value is None or isinstance(value, bool):
        return missing if value is None else str(value)
    if isinstance(value, (int, float)):
        return f"{float(value):.{digits}f}" if math.isfinite(value) else missing
    return str(value)


def fmt_p(value: float) -> str:
    """A p-value as papers print it: three decimals, or ``< 0.001``."""
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def slug(text: str, max_len: int | None = None) -> str:
    """A folder-safe name: runs of anything but ASCII letters, digits, ``.``, ``_`` and ``-`` become one ``-``."""
    out = _NOT_SLUG.sub("-", text).strip("-")
    return out[:max_len] if max_len else out


def run_tag(name: str) -> str:
    """The TREC run tag (6th column) of a system or generator name: ``rrbench-`` and at most 60 safe characters."""
    return "rrbench-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[-60:]


_MARKDOWN_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>|#"})


def md_escape(text: object) -> str:
    """Text that renders as itself in a markdown table cell: markdown's special characters escaped, line breaks
    turned into spaces (a name can neither add a row, a link nor markup to a board)."""
    return " ".join(str(text).split()).translate(_MARKDOWN_SPECIAL)
