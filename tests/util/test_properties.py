"""Property-based tests (hypothesis) of the task loader and the record checker: a random mutation of a valid file
either loads identically or fails with a one-line rrbench error, never with another exception."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrbench.records.record import load_record
from rrbench.tasks.resolve import load_task_dir
from rrbench.testing.fixtures import make_mini_task
from rrbench.util.errors import RRBenchError
from rrbench.util.io import sha256_file

MUTATIONS = st.lists(st.tuples(st.sampled_from(["flip", "delete", "insert", "truncate"]),
                               st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4)


def _mutate(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for kind, where, value in edits:
        if not out:
            break
        i = int(where * len(out))
        if kind == "flip":
            out[i] = value
        elif kind == "delete":
            del out[i]
        elif kind == "insert":
            out.insert(i, value)
        else:
            del out[i:]
    return bytes(out)


def _snapshot(task) -> tuple:
    return (task.post_ids, task.sentences, {k: (q.post_id, q.text, q.criterion_id) for k, q in task.queries.items()},
            task.qrels, task.split_of)


def _one_line(exc: Exception) -> None:
    assert str(exc) and "\n" not in str(exc), repr(exc)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return make_mini_task(tmp_path_factory.mktemp("prop") / "task")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["posts", "queries", "qrels", "splits"]), edits=MUTATIONS)
def test_mutated_task_data_loads_identically_or_fails_in_one_line(pristine, tmp_path_factory, name, edits):
    reference = _snapshot(load_task_dir(pristine))
    task = tmp_path_factory.mktemp("mut") / "task"
    shutil.copytree(pristine, task)
    path = task / f"{name}.jsonl.gz"
    raw = _mutate(gzip.decompress(path.read_bytes()), edits)
    path.write_bytes(gzip.compress(raw, mtime=0))
    spec = yaml.safe_load((task / "task.yaml").read_text())
    declared = spec["splits"]["assignment"] if name == "splits" else spec["files"][name]
    declared["sha256"] = sha256_file(path)  # the content is what is tested, not the hash check
    (task / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    try:
        loaded = load_task_dir(task)
    except RRBenchError as exc:
        _one_line(exc)
        return
    if raw.strip() == gzip.decompress((pristine / f"{name}.jsonl.gz").read_bytes()).strip():
        assert _snapshot(loaded) == reference


SAMPLE_RECORD = Path(__file__).parents[1] / "records" / "data" / "sample-record.json"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=MUTATIONS)
def test_mutated_records_parse_or_fail_in_one_line(tmp_path_factory, edits):
    folder = tmp_path_factory.mktemp("rec")
    (folder / "results.json").write_bytes(_mutate(SAMPLE_RECORD.read_bytes(), edits))
    try:
        load_record(folder)
    except RRBenchError as exc:
        _one_line(exc)
