"""Task spec validation: every kind of bad input fails with one line naming the file and field."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import yaml

from rrbench.tasks.resolve import get_task, load_task_dir
from rrbench.testing.fixtures import MINI_POSTS, MINI_QRELS, MINI_QUERIES, write_task
from rrbench.util.errors import TaskSpecError, UsageError
from rrbench.util.io import sha256_file


def _spec(task: Path) -> dict:
    return yaml.safe_load((task / "task.yaml").read_text())


def _save_spec(task: Path, spec: dict) -> None:
    (task / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def _rewrite_gz(task: Path, name: str, payload: bytes) -> None:
    path = task / f"{name}.jsonl.gz"
    path.write_bytes(gzip.compress(payload))
    spec = _spec(task)
    spec["files"][name]["sha256"] = sha256_file(path)
    _save_spec(task, spec)


def test_mini_task_loads(mini_task):
    task = load_task_dir(mini_task)
    assert task.split_stats()["dev_select"] == {"posts": 4, "sentences": 14, "queries": 6, "has_evidence": 4,
                                                "no_evidence": 2, "evidence_sentences": 7}
    assert task.docno(task.global_index("p3", 1)) == "p3:1"


def test_unknown_field_rejected(mini_task):
    spec = _spec(mini_task)
    spec["scopee"] = "post"
    _save_spec(mini_task, spec)
    with pytest.raises(TaskSpecError, match=r"task.yaml: invalid task spec: field 'scopee': unknown field"):
        load_task_dir(mini_task)


def test_missing_required_field(mini_task):
    spec = _spec(mini_task)
    del spec["license"]
    _save_spec(mini_task, spec)
    with pytest.raises(TaskSpecError, match="field 'license': required field is missing"):
        load_task_dir(mini_task)


def test_malformed_yaml(mini_task):
    (mini_task / "task.yaml").write_text("id: [unclosed\n")
    with pytest.raises(TaskSpecError, match="malformed YAML"):
        load_task_dir(mini_task)


def test_bad_fractions(mini_task):
    spec = _spec(mini_task)
    spec["splits"] = {"method": "grouped", "fractions": {"train": 0.5, "test": 0.2}}
    _save_spec(mini_task, spec)
    with pytest.raises(TaskSpecError, match="fractions must sum to 1"):
        load_task_dir(mini_task)


def test_missing_data_file(mini_task):
    (mini_task / "qrels.jsonl.gz").unlink()
    with pytest.raises(TaskSpecError, match=r"field 'files.qrels': data file qrels.jsonl.gz not found"):
        load_task_dir(mini_task)


def test_checksum_mismatch(mini_task):
    (mini_task / "posts.jsonl.gz").write_bytes(gzip.compress(b'{"post_id": "x", "sentences": ["a"]}\n'))
    with pytest.raises(TaskSpecError, match="posts.jsonl.gz: sha256 mismatch"):
        load_task_dir(mini_task)


def _lines(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.mark.parametrize("name, rows, message", [
    ("posts", MINI_POSTS + [MINI_POSTS[0]], "line 5: duplicate post_id 'p1'"),
    ("posts", MINI_POSTS + [{"post_id": "p9", "sentences": []}], "line 5: post 'p9' is empty"),
    ("posts", MINI_POSTS + [{"post_id": "p9", "sentences": ["ok", "  "]}], "post 'p9' sentence 1 is empty"),
    ("posts", MINI_POSTS + [{"post_id": "p9", "sentences": ["ok"], "colour": 1}], "unknown field"),
    ("queries", MINI_QUERIES + [MINI_QUERIES[0]], "line 7: duplicate query_id 'q1'"),
    # ids become TREC columns: whitespace inside one would split it (issue 14, defect 6)
    ("queries", MINI_QUERIES + [{"query_id": "q 9", "post_id": "p1", "text": "t"}],
     "line 7: field 'query_id' 'q 9' must be non-empty and contain no whitespace"),
    ("queries", MINI_QUERIES + [{"query_id": "", "post_id": "p1", "text": "t"}], "field 'query_id' '' must be non-empty"),
    ("posts", MINI_POSTS + [{"post_id": "p\t9", "sentences": ["ok"]}], "line 5: field 'post_id' .* no whitespace"),
    ("queries", MINI_QUERIES + [{"query_id": "q9", "post_id": "nope", "text": "t"}], "unknown post_id 'nope'"),
    ("qrels", MINI_QRELS + [{"query_id": "q1", "sentence": 4, "grade": 1}], "sentence 4 is past the end of post 'p1'"),
    ("qrels", MINI_QRELS + [{"query_id": "q1", "sentence": 1, "grade": -1}], "field 'grade' must be an integer >= 0"),
    ("qrels", MINI_QRELS + [{"query_id": "q1", "sentence": 1, "grade": "yes"}], "field 'grade' must be int"),
    ("qrels", MINI_QRELS + [{"query_id": "q1", "sentence": 1, "grade": True}], "field 'grade' must be int"),
    ("qrels", MINI_QRELS + [{"query_id": "zz", "sentence": 1, "grade": 1}], "qrel for unknown query_id 'zz'"),
    ("qrels", MINI_QRELS + [MINI_QRELS[0]], "duplicate qrel for query 'q1' sentence 0"),
])
def test_bad_rows(mini_task, name, rows, message):
    _rewrite_gz(mini_task, name, _lines(rows))
    with pytest.raises(TaskSpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_task_dir(mini_task)


def test_non_utf8_file(mini_task):
    _rewrite_gz(mini_task, "queries", _lines(MINI_QUERIES) + b'{"query_id": "q9", "post_id": "p1", "text": "caf\xe9"}\n')
    with pytest.raises(TaskSpecError, match="queries.jsonl.gz line 7: not valid UTF-8"):
        load_task_dir(mini_task)


def test_malformed_json_line(mini_task):
    _rewrite_gz(mini_task, "queries", _lines(MINI_QUERIES) + b"{not json}\n")
    with pytest.raises(TaskSpecError, match="line 7: malformed JSON"):
        load_task_dir(mini_task)


def test_grouped_split_leak_detected(tmp_path):
    queries = MINI_QUERIES + [{"query_id": "q7", "post_id": "p1", "text": "aspirin again", "criterion_id": "c7"}]
    splits = {q["query_id"]: "train" for q in queries}
    splits["q7"] = "test"  # p1 is also in train through q1
    task = write_task(tmp_path / "leaky", MINI_POSTS, queries, MINI_QRELS, splits=splits)
    spec = _spec(task)
    spec["splits"]["method"] = "grouped"
    spec["splits"]["fractions"] = {"train": 0.5, "test": 0.5}
    _save_spec(task, spec)
    with pytest.raises(TaskSpecError, match="leaks post 'p1' across splits 'train' and 'test'"):
        load_task_dir(task)


def test_unknown_split_and_task_suggest(mini_task):
    task = load_task_dir(mini_task)
    with pytest.raises(UsageError, match="Did you mean: dev_select"):
        task.split_queries("dev-select")
    with pytest.raises(UsageError, match="Did you mean: scifact-evidence"):
        get_task("scifact-evidense")


def test_validate_task_cli(cli, mini_task):
    ok = cli("validate-task", str(mini_task))
    assert ok.returncode == 0 and "ok: task mini-task@1" in ok.stdout
    (mini_task / "posts.jsonl.gz").write_bytes(b"garbage")
    bad = cli("validate-task", str(mini_task))
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "sha256 mismatch" in bad.stderr and "Traceback" not in bad.stderr


def test_tasks_show_json(cli):
    result = cli("tasks", "show", "scifact-evidence", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert set(info["splits"]) == {"train", "dev_select", "dev_final", "test"}
    total = sum(s["queries"] for s in info["splits"].values())
    assert total == 1258
    assert all(s["has_evidence"] + s["no_evidence"] == s["queries"] for s in info["splits"].values())
