"""One strict JSON reader and one YAML reader: hostile documents are one-line errors, never a crash or a hang."""

from __future__ import annotations

import pytest

from rrbench.util.errors import UsageError
from rrbench.util.io import MAX_JSON_DEPTH, loads_strict_json, read_json_object
from rrbench.util.strict_yaml import MAX_YAML_ALIASES, loads_yaml, read_yaml_mapping


@pytest.mark.parametrize("text, fragment", [
    ('{"a": NaN}', "non-finite number NaN"),
    ('{"a": -Infinity}', "non-finite number -Infinity"),
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ('{"a": ', "malformed JSON at line 1"),
    ("[" * 200_000 + "]" * 200_000, f"nested deeper than {MAX_JSON_DEPTH} levels"),
])
def test_strict_json_refuses_what_parsers_read_differently(text, fragment):
    with pytest.raises(UsageError, match=fragment) as info:
        loads_strict_json(text, "doc.json")
    assert str(info.value).startswith("doc.json: ") and "\n" not in str(info.value)


def test_brackets_inside_strings_do_not_count_as_nesting():
    assert loads_strict_json('{"a": "' + "[" * 500 + '"}', "x") == {"a": "[" * 500}


def test_a_json_file_must_hold_an_object(tmp_path):
    (tmp_path / "a.json").write_text("[1]")
    with pytest.raises(UsageError, match="expected a JSON object, got list"):
        read_json_object(tmp_path / "a.json")


def test_yaml_alias_bombs_are_refused_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    with pytest.raises(UsageError, match=f"more than {MAX_YAML_ALIASES} aliases"):
        loads_yaml("\n".join(lines), "bomb.yaml")


def test_a_few_aliases_are_fine():
    assert loads_yaml("base: &b {k: 1}\nother: *b\n", "x") == {"base": {"k": 1}, "other": {"k": 1}}


def test_yaml_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: [1, 2\nb: 3\n")
    with pytest.raises(UsageError, match=r"c.yaml: malformed YAML at line \d"):
        read_yaml_mapping(path, "configuration file")
    with pytest.raises(UsageError, match="configuration file not found"):
        read_yaml_mapping(tmp_path / "missing.yaml", "configuration file")
    path.write_text("- a\n- b\n")
    with pytest.raises(UsageError, match="holds a mapping, not list"):
        read_yaml_mapping(path, "configuration file")
