"""``rrbench tasks import-beir``: round trip on a small BEIR folder the test writes, and clear errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rrbench.tasks.beir import import_beir
from rrbench.util.errors import UsageError

CORPUS = [
    {"_id": "d1", "title": "Aspirin", "text": "Aspirin reduces the risk of heart attack."},
    {"_id": "d2", "title": "", "text": "Vitamin D supplements did not prevent fractures."},
    {"_id": "d3", "title": "Coffee", "text": "Caffeine blocks adenosine receptors."},
    {"_id": "d4", "title": "Exercise", "text": "Walking improves mood in older adults."},
    {"_id": "d5", "title": "", "text": ""},
]
QUERIES = [
    {"_id": "q1", "text": "does aspirin prevent heart attacks"},
    {"_id": "q2", "text": "caffeine and the brain"},
    {"_id": "q3", "text": "vitamin D and bones"},
    {"_id": "q9", "text": "a query without judgements"},
]
QRELS = {
    "test": [("q1", "d1", 1), ("q1", "d4", 0), ("q2", "d3", 2)],
    "dev": [("q3", "d2", 1), ("q3", "d1", -1)],
}


def write_beir(root: Path, corpus=CORPUS, queries=QUERIES, qrels=QRELS, header: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus), encoding="utf-8")
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    (root / "qrels").mkdir(exist_ok=True)
    for split, rows in qrels.items():
        lines = (["query-id\tcorpus-id\tscore"] if header else []) + [f"{q}\t{d}\t{s}" for q, d, s in rows]
        (root / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_round_trip_through_the_cli_and_a_run(tmp_path, cli):
    source = write_beir(tmp_path / "mini-beir")
    result = cli("tasks", "import-beir", str(source), "--id", "mini-beir")
    assert result.returncode == 0, result.stderr
    assert "3 queries" in result.stdout and "left out" in result.stdout  # q9 and d5 are reported

    from rrbench.tasks.folders import user_tasks_dir
    from rrbench.tasks.resolve import load_task_dir
    task = load_task_dir(user_tasks_dir() / "mini-beir")
    assert task.spec.scope == "corpus" and task.spec.unit == "document"
    assert task.post_ids == ["d1", "d2", "d3", "d4"]
    assert task.sentences[0] == "Aspirin Aspirin reduces the risk of heart attack."
    assert task.sentences[1] == "Vitamin D supplements did not prevent fractures."
    assert task.split_names == ["dev", "test"]
    assert {q.query_id for q in task.split_queries("test")} == {"q1", "q2"}
    assert {task.docno(i): g for i, g in task.judged(task.queries["q1"]).items()} == {"d1": 1, "d4": 0}
    assert {task.docno(i): g for i, g in task.judged(task.queries["q3"]).items()} == {"d2": 1, "d1": 0}

    # Usable by --task NAME like any other task; TREC files use the BEIR ids as docnos.
    out = tmp_path / "run"
    result = cli("run", "--task", "mini-beir", "--split", "test", "--final", "--retriever", "bm25",
                 "--output", str(out))
    assert result.returncode == 0, result.stderr
    qrels = sorted((out / "qrels.trec").read_text().split("\n")[:-1])
    assert qrels == ["q1 0 d1 1", "q2 0 d3 2"]
    ranked = [line.split() for line in (out / "run.trec").read_text().splitlines()]
    assert {r[2] for r in ranked} == {"d1", "d2", "d3", "d4"}
    assert [r[2] for r in ranked if r[0] == "q1"][0] == "d1"
    listed = cli("tasks", "list")
    assert "mini-beir" in listed.stdout


def test_reimport_needs_force_and_headerless_qrels_work(tmp_path):
    source = write_beir(tmp_path / "b", header=False)
    dest = tmp_path / "tasks"
    first = import_beir(source, "b", dest)
    assert first["splits"] == {"dev": 1, "test": 2}
    with pytest.raises(UsageError, match="already exists; pass --force"):
        import_beir(source, "b", dest)
    assert import_beir(source, "b", dest, force=True)["qrels"] == 5


@pytest.mark.parametrize("mutate, fragment", [
    (lambda root: [p.unlink() for p in (root / "qrels").iterdir()], "no qrels/<split>.tsv"),
    (lambda root: (root / "queries.jsonl").unlink(), "queries.jsonl not found"),
    (lambda root: (root / "qrels" / "test.tsv").write_text("q7\td1\t1\n"), "'q7' is absent from queries.jsonl"),
    (lambda root: (root / "qrels" / "test.tsv").write_text("q1\tzz\t1\n"), "'zz' is absent from corpus.jsonl"),
    (lambda root: (root / "qrels" / "test.tsv").write_text("q1\td5\t1\n"), "no title or text"),
    (lambda root: (root / "qrels" / "test.tsv").write_text("q3\td1\t1\n"), "judged in two splits"),
    (lambda root: (root / "qrels" / "test.tsv").write_text("q1\td1\tx\nq1\td1\tbad\n"), "is not a number"),
])
def test_bad_beir_folders_get_one_line_errors(tmp_path, mutate, fragment):
    source = write_beir(tmp_path / "bad")
    mutate(source)
    with pytest.raises(UsageError, match=fragment.replace("(", r"\(").replace(")", r"\)")) as info:
        import_beir(source, "bad", tmp_path / "tasks")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "tasks" / "bad").exists()  # nothing written


def test_cli_errors_exit_2(tmp_path, cli):
    result = cli("tasks", "import-beir", str(tmp_path / "missing"), "--id", "x")
    assert result.returncode == 2 and "not a directory" in result.stderr
    source = write_beir(tmp_path / "ok")
    result = cli("tasks", "import-beir", str(source), "--id", "bad id!")
    assert result.returncode == 2 and "--id" in result.stderr
