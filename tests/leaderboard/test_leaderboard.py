"""Leaderboard submissions that cannot be forged: every kind of tampering is refused with one line naming the field;
the submission flow (SHA256SUMS, CHANGELOG, superseded boards), `leaderboard check`, and the committed board."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import rrbench
from rrbench.cli.main import main
from rrbench.util.io import canonical_hash
from rrbench.leaderboard.board import build, check, collect, publish, render
from rrbench.records.record import RecordError, record_folder_name, system_identity
from rrbench.testing.fixtures import (
    MINI_POSTS,
    MINI_QRELS,
    MINI_QUERIES,
    write_task,
)
from rrbench.leaderboard.verify import verify_record

pytestmark = pytest.mark.usefixtures("torch_one_thread")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runs(registered_task, tiny_model, tmp_path):
    rrbench.run(task=registered_task, output=str(tmp_path / "bm25"), show_progress=False)
    rrbench.run(task=registered_task, reranker=str(tiny_model), output=str(tmp_path / "ce"), show_progress=False,
                     threshold=0.0)
    return {"bm25": tmp_path / "bm25", "ce": tmp_path / "ce"}


def _copy(folder: Path, name: str) -> Path:
    target = folder.with_name(name)
    shutil.copytree(folder, target)
    return target


def _edit(folder: Path, change, name: str = "tampered") -> Path:
    target = _copy(folder, name)
    record = json.loads((target / "results.json").read_text())
    change(record)
    (target / "results.json").write_text(json.dumps(record))
    return target


def _rehash(record):
    record["manifest"]["config_hash"] = canonical_hash(record["manifest"]["config"])


def _shuffle_per_query(record):
    """Rotate the per-query nDCG values among queries: the aggregate (their mean) stays right."""
    ids = [q for q, v in record["per_query"].items() if "nDCG@10" in v]
    values = [record["per_query"][q]["nDCG@10"] for q in ids]
    assert len(set(values)) > 1
    for q, v in zip(ids, values[1:] + values[:1]):
        record["per_query"][q]["nDCG@10"] = v


def _rename_reranker(record, name="qwen3-8b"):
    for part in (record["manifest"]["config"]["reranker"], record["manifest"]["components"]["reranker"]):
        part["id"] = name
    _rehash(record)


def _new_task_hash(record):
    for part in (record["manifest"]["task"], record["manifest"]["config"]["task"]):
        part["data_sha256"] = "0" * 64
    _rehash(record)


TAMPERING = {
    "identity, components only": (lambda r: r["manifest"]["components"]["reranker"].__setitem__("id", "qwen3-8b"),
                                  "manifest.components.reranker.id"),
    "identity, config re-hashed": (_rename_reranker, "manifest.components.reranker.backend"),
    "identity of a pinned model": (lambda r: _rename_reranker(r, "minilm-l6"), "manifest.config.reranker.revision"),
    "config without re-hashing": (lambda r: r["manifest"]["config"].__setitem__("top_k_rerank", 50),
                                  "manifest.config_hash"),
    "config re-hashed": (lambda r: (r["manifest"]["config"].__setitem__("top_k_rerank", 50), _rehash(r)),
                         "manifest.options.top_k_rerank"),
    "per-query values shuffled": (_shuffle_per_query, "per_query."),
    "aggregate": (lambda r: r["metrics"].__setitem__("RR@10", 0.99), "metrics.RR@10"),
    "task hash": (_new_task_hash, "manifest.task.data_sha256"),
    "throughput": (lambda r: r["manifest"].__setitem__("pairs_per_s", 99999.0), "manifest.pairs_per_s"),
    "newer schema": (lambda r: r.__setitem__("schema_version", 99), "schema_version 99 is newer"),
    "test split": (lambda r: r["manifest"].__setitem__("split", "test"), "manifest.split"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_publish_refuses_every_kind_of_tampering(runs, tmp_path, capsys, case):
    change, field = TAMPERING[case]
    tampered = _edit(runs["ce"], change)
    assert main(["publish", str(tampered), "--to", str(tmp_path / "board")]) == 2
    err = capsys.readouterr().err
    assert field in err and err.count("\n") == 1, err
    assert not (tmp_path / "board").exists()  # nothing half-written


def test_publish_refuses_edited_run_file_truncated_record_and_unknown_queries(runs, tmp_path, capsys):
    board = str(tmp_path / "board")
    folder = _copy(runs["ce"], "reversed")
    lines = (folder / "run.trec").read_text().splitlines()
    by_query: dict[str, list[str]] = {}
    for line in lines:
        by_query.setdefault(line.split()[0], []).append(line)
    swapped = []
    for rows in by_query.values():  # same scores, documents in reverse order
        docs = [r.split()[2] for r in rows][::-1]
        swapped += [" ".join(r.split()[:2] + [d] + r.split()[3:]) for r, d in zip(rows, docs)]
    (folder / "run.trec").write_text("\n".join(swapped) + "\n")
    assert main(["publish", str(folder), "--to", board]) == 2
    assert "does not follow from run.trec" in capsys.readouterr().err

    truncated = _copy(runs["ce"], "truncated")
    text = (truncated / "results.json").read_text()
    (truncated / "results.json").write_text(text[: len(text) // 2])
    assert main(["publish", str(truncated), "--to", board]) == 2
    assert "not strict JSON" in capsys.readouterr().err

    foreign = _copy(runs["ce"], "foreign")
    with open(foreign / "run.trec", "a") as handle:
        handle.write("no-such-query Q0 p1:0 1 5.0 x\n")
    assert main(["publish", str(foreign), "--to", board]) == 2
    err = capsys.readouterr().err
    assert "run.trec" in err and "no-such-query" in err and err.count("\n") == 1


def test_submission_flow_check_and_published_tampering(runs, tmp_path, capsys):
    board = tmp_path / "board"
    for name in ("bm25", "ce"):
        assert main(["publish", str(runs[name]), "--to", str(board)]) == 0
    capsys.readouterr()
    published = {p.parent.name: p.parent for p in board.glob("*/*/*/results.json")}
    for folder in published.values():
        record = json.loads((folder / "results.json").read_text())
        assert folder.name == record_folder_name(record["manifest"])
        assert (folder / "SHA256SUMS").read_text().count("\n") == 2
        assert "/" not in system_identity(record["manifest"])  # never a local path
    changelog = (board / "CHANGELOG.md").read_text()
    assert changelog.count("\n- ") == 2 and "added `mini-task@1/dev_select/" in changelog

    # check: the README must be what build makes
    assert main(["leaderboard", "check", "--leaderboard-dir", str(board)]) == 2
    assert "README.md: not what" in capsys.readouterr().err
    build(board)
    assert check(board) == 2
    assert main(["leaderboard", "check", "--leaderboard-dir", str(board)]) == 0

    # a published record edited after publication, or copied under another system's folder, is refused
    ce_folder = next(f for n, f in published.items() if "local-model" in n)
    bm25_folder = next(f for n, f in published.items() if "no-reranker" in n)
    text = (ce_folder / "results.json").read_text()
    (ce_folder / "results.json").write_text(text + " ")  # same JSON, other bytes
    with pytest.raises(RecordError, match="results.json: its sha256 is not the one in SHA256SUMS"):
        check(board)
    (ce_folder / "results.json").write_text(text)
    shutil.rmtree(bm25_folder)
    shutil.copytree(ce_folder, bm25_folder)
    with pytest.raises(RecordError, match="folder: .* is not the record's derived name"):
        check(board)


def test_superseded_board_stays_readable_and_refuses_submissions(runs, tmp_path, capsys):
    from rrbench.components.registry import reset_registry

    board = tmp_path / "board"
    publish(runs["bm25"], board)
    write_task(Path(os.environ["RRBENCH_TASKS_DIR"]) / "mini-task", MINI_POSTS, MINI_QUERIES, MINI_QRELS,
               splits={q["query_id"]: "dev_select" for q in MINI_QUERIES}, version=2)
    reset_registry()
    assert main(["publish", str(runs["ce"]), "--to", str(board)]) == 2
    assert "superseded" in capsys.readouterr().err
    build(board)
    readme = (board / "README.md").read_text()
    assert "mini-task@1 · dev_select (superseded by mini-task@2)" in readme
    assert check(board) == 1  # readable: internal consistency still verified


def test_build_shows_intervals_ties_and_seed_groups(runs, tmp_path):
    board = tmp_path / "board"
    for folder in runs.values():
        publish(folder, board)
    (entries,) = collect(board).values()
    readme = render(board)
    row_lines = [line for line in readme.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(row_lines) == 2 and "| leader |" in row_lines[0]
    assert "[" in row_lines[0].split("|")[4]  # a 95% CI cell
    assert "≈ tied" in row_lines[1] or "below" in row_lines[1]
    assert "randomised Tukey HSD" in render(board, method="tukey")

    # two records that differ only in the training seed fold into one row (mean ± std)
    from rrbench.leaderboard.board import Entry, build_rows

    base = entries[0].record

    def seeded(seed, shift):
        record = json.loads(json.dumps(base))
        record["manifest"]["checkpoint"] = {"weights_sha256": f"{seed:064x}", "training_manifest": {
            "regime": "r", "loss": "bce", "miner": {"id": "m", "seed": seed}, "base_model": {"hub_id": "b"}}}
        record["manifest"]["config"]["reranker"] = {"id": f"ckpt{seed}", "revision": f"{seed:064x}"}
        record["manifest"]["config_hash"] = canonical_hash(record["manifest"]["config"])
        record["metrics"]["nDCG@10"] += shift
        return Entry(Path(f"/x/{seed}/results.json"), record)

    rows = build_rows([seeded(1, 0.0), seeded(2, 0.02)])
    assert len(rows) == 1 and len(rows[0].entries) == 2 and "(2 seeds)" in rows[0].name
    assert rows[0].std == pytest.approx(0.02 / 2 ** 0.5)


def test_committed_leaderboard_passes_check():
    """rrbench's own CI runs `leaderboard check` on the committed board."""
    assert check(ROOT / "leaderboard") >= 1
    for file in (ROOT / "leaderboard").glob("*/*/*/results.json"):
        assert verify_record(file.parent, published=True)


def test_test_split_records_need_the_test_ledger(tmp_path, capsys):
    """A test-split record is published only when its configuration is in the board's test ledger."""
    from dataclasses import fields

    from rrbench.records import ledger
    from rrbench.components.registry import reset_registry
    from rrbench.pipeline.runner import RunConfig

    splits = {q["query_id"]: ("test" if q["query_id"] in ("q1", "q2", "q4") else "dev_select") for q in MINI_QUERIES}
    write_task(Path(os.environ["RRBENCH_TASKS_DIR"]) / "mini-task", MINI_POSTS, MINI_QUERIES, MINI_QRELS, splits=splits)
    reset_registry()
    try:
        final = {"final": True} if "final" in {f.name for f in fields(RunConfig)} else {}
        os.environ[ledger.ENV] = str(tmp_path / "runner-ledger.jsonl")
        record = rrbench.run(task="mini-task", split="test", output=str(tmp_path / "test-run"), show_progress=False,
                             **final)
        board = tmp_path / "board"
        assert main(["publish", str(tmp_path / "test-run"), "--to", str(board)]) == 2
        assert "not in the test ledger" in capsys.readouterr().err
        manifest = record["manifest"]
        ledger.claim(manifest["config_hash"], "mini-task", manifest["task"]["data_sha256"],
                     path=board / "test-ledger.jsonl")
        assert main(["publish", str(tmp_path / "test-run"), "--to", str(board)]) == 0
        build(board)
        assert check(board) == 1
        (board / "test-ledger.jsonl").write_text("")  # a record whose ledger line was removed is refused
        with pytest.raises(RecordError, match="manifest.split: 'test' record whose configuration"):
            check(board)
    finally:
        os.environ.pop(ledger.ENV, None)
        reset_registry()
