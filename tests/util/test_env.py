"""Numeric environment settings: one reader, one-line errors naming the variable."""

from __future__ import annotations

import pytest

from rrbench.pipeline.fill_queue import default_unit_pairs, lease_seconds
from rrbench.util.errors import UsageError


def test_unset_gives_the_default_and_a_value_is_read(monkeypatch):
    monkeypatch.delenv("RRBENCH_FILL_LEASE", raising=False)
    default = lease_seconds()
    monkeypatch.setenv("RRBENCH_FILL_LEASE", "2.5")
    assert lease_seconds() == 2.5 != default
    monkeypatch.setenv("RRBENCH_FILL_UNIT_PAIRS", "96")
    assert default_unit_pairs() == 96


@pytest.mark.parametrize("name, raw, message", [
    ("RRBENCH_FILL_UNIT_PAIRS", "1.5", "is not a whole number"),
    ("RRBENCH_FILL_UNIT_PAIRS", "0", "must be positive"),
    ("RRBENCH_FILL_LEASE", "soon", "is not a number of seconds"),
    ("RRBENCH_FILL_LEASE", "-3", "must be positive"),
    ("RRBENCH_FILL_LEASE", "nan", "must be positive"),
])
def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch, name, raw, message):
    monkeypatch.setenv(name, raw)
    with pytest.raises(UsageError, match=message) as info:
        default_unit_pairs() if name == "RRBENCH_FILL_UNIT_PAIRS" else lease_seconds()
    assert str(info.value).startswith(f"{name}={raw!r}") and "\n" not in str(info.value)
