"""The malformed-input corpus (``tests/tasks/malformed/cases.yaml``): every bad input ends as one line on stderr, with the
expected exit code and message, no traceback, and nothing written.

Each case names its input: a mutation of the mini task (spec fields, data file contents or raw bytes, a symlink), a
checkpoint folder, a result record, command-line values, or environment variables. Placeholders in arguments and
messages: ``{task}`` (the task folder), ``{tmp}`` (the case's scratch folder), ``{out}`` (an output path that must not
appear), ``{ckpt}`` (a checkpoint folder), ``{record}`` (a result folder).
"""

from __future__ import annotations

import base64
import gzip
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from rrbench.cli.main import main
from rrbench.testing.fixtures import make_mini_task
from rrbench.util.io import sha256_file

CASES_FILE = Path(__file__).parent / "malformed" / "cases.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))


def _payload(entry: dict[str, Any]) -> bytes:
    if "lines" in entry:
        import json

        return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                       for line in entry["lines"]).encode("utf-8")
    if "long_line" in entry:  # generated: a committed 17 MB file would not be "small"
        return b'{"post_id": "p1", "sentences": ["' + b"x" * int(entry["long_line"]) + b'"]}\n'
    if "text" in entry:
        return entry["text"].encode("utf-8")
    return base64.b64decode(entry["b64"])


def _write_data(task: Path, name: str, entry: dict[str, Any]) -> None:
    spec = yaml.safe_load((task / "task.yaml").read_text())
    declared = spec["splits"]["assignment"] if name == "splits" else spec["files"][name]
    path = task / declared["path"]
    raw = _payload(entry)
    if entry.get("gzip", True):
        raw = gzip.compress(raw, mtime=0)
        if entry.get("truncate"):
            raw = raw[: len(raw) // 2]
    path.write_bytes(raw)
    if not entry.get("keep_hash"):
        declared["sha256"] = sha256_file(path)
    (task / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        elif value is None:
            base.pop(key, None)
        else:
            base[key] = value


def _prepare(case: dict[str, Any], tmp: Path, tiny_model: Path, record_dir: Path) -> dict[str, str]:
    places = {"tmp": str(tmp), "out": str(tmp / "out"), "task": str(tmp / "task"), "ckpt": str(tmp / "ckpt"),
              "record": str(tmp / "record")}
    task = make_mini_task(tmp / "task")
    for name, entry in (case.get("data") or {}).items():
        _write_data(task, name, entry)
    for name, target in (case.get("symlinks") or {}).items():
        (task / name).symlink_to(target.format(**places))
    if "spec" in case:
        spec = yaml.safe_load((task / "task.yaml").read_text())
        _merge(spec, yaml.safe_load(yaml.safe_dump(case["spec"]).replace("{tmp}", str(tmp))))
        (task / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    if "spec_text" in case:
        (task / "task.yaml").write_text(case["spec_text"])
    if "checkpoint" in case:
        ckpt = shutil.copytree(tiny_model, tmp / "ckpt")
        entry = case["checkpoint"]
        if "meta" in entry:
            (ckpt / "rrbench_model.json").write_text(entry["meta"])
        if entry.get("drop_weights"):
            for weights in list(ckpt.glob("*.safetensors")) + list(ckpt.glob("*.bin")):
                weights.unlink()
    if "record" in case:
        record = shutil.copytree(record_dir, tmp / "record")
        text = (record / "results.json").read_text()
        for old, new in (case["record"].get("replace") or {}).items():
            assert old in text, f"case {case['id']}: {old!r} is not in the record"
            text = text.replace(old, new, 1)
        if "truncate" in case["record"]:
            text = text[: case["record"]["truncate"]]
        (record / "results.json").write_text(text)
    for name in case.get("files") or ():
        (tmp / name).write_text("not a folder")
    return places


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def record_dir(tmp_path_factory) -> Path:
    """One real, valid result folder (bm25 on the mini task) that record cases damage copies of."""
    import os

    import rrbench

    base = tmp_path_factory.mktemp("record")
    old = os.environ.get("RRBENCH_CACHE")
    os.environ["RRBENCH_CACHE"] = str(base / "cache")
    try:
        rrbench.run(task=str(make_mini_task(base / "mini-task")), output=str(base / "run"), show_progress=False)
    finally:
        if old is None:
            os.environ.pop("RRBENCH_CACHE")
        else:
            os.environ["RRBENCH_CACHE"] = old
    return base / "run"


def test_the_corpus_is_big_and_ids_are_unique():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_malformed_input(case, tmp_path, tiny_model, record_dir, monkeypatch, capsys):
    tmp = tmp_path / "case"
    tmp.mkdir()
    places = _prepare(case, tmp, tiny_model, record_dir)
    for key, value in (case.get("env") or {}).items():
        monkeypatch.setenv(key, value.format(**places))
    monkeypatch.delenv("RRBENCH_DEBUG", raising=False)
    before = _listing(tmp)
    capsys.readouterr()
    code = main([arg.format(**places) for arg in case["args"]])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = (err if case["exit"] else out).strip().splitlines()  # exit 0: accepted input (BOM, CRLF), said on stdout
    assert code == case["exit"], err
    assert len(lines) == 1 and (case["exit"] or not err), err
    expected = case["message"].format(**places)
    assert lines[0].startswith(expected), f"\n got: {lines[0]}\nwant: {expected}"
    assert _listing(tmp) == before, "a failed command wrote files"
