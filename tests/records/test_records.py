"""Result records: typed and strict, reproducible from their claims, and a board rebuilt from records only.

Forged records are the business of tests/forgery; this file checks what an honest user relies on.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

import rrbench
from rrbench.cli.main import main
from rrbench.leaderboard.board import build, collect, publish, render
from rrbench.leaderboard.reproduce import reproduce
from rrbench.records.evidence import read_evidence
from rrbench.records.record import load_record, read_record_json
from rrbench.records.schema import SCHEMA_VERSION, Record, RecordError
from rrbench.testing.fixtures import make_tiny_bert
from rrbench.util.io import sha256_file

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def runs(registered_task, tiny_model, tmp_path):
    """Two real records on the mini task: BM25 alone and BM25 -> tiny cross-encoder."""
    bm25 = rrbench.run(task=registered_task, output=str(tmp_path / "bm25"), show_progress=False)
    ce = rrbench.run(task=registered_task, reranker=str(tiny_model), output=str(tmp_path / "ce"), show_progress=False)
    return {"bm25": (tmp_path / "bm25", bm25), "ce": (tmp_path / "ce", ce)}


def test_a_record_is_typed_strict_json_with_its_evidence(runs):
    folder, returned = runs["ce"]
    record = load_record(folder)
    assert isinstance(record, Record) and record.schema_version == SCHEMA_VERSION == 2
    assert record.kind == "run" and record.config_hash == returned["config_hash"]
    claims = record.run_claims
    assert claims.task.id == "mini-task" and claims.split == "dev_select"
    (reranker,) = claims.rerankers
    assert reranker.id.startswith("local-model@") and reranker.checkpoint is None  # a plain local cross-encoder
    assert record.provenance.command.startswith("rrbench run ") and "--reranker" in record.provenance.command
    # the raw scores of every stage travel with the record: the metrics are derived from them
    evidence = read_evidence(folder / "scores.jsonl.gz")
    assert evidence.split == "dev_select" and evidence.rerankers == (reranker.qualified,)
    assert set(evidence.by_query()) == set(record.per_query)
    assert all(len(q.heads[0]) <= claims.top_k_rerank <= len(q.pool) or len(q.heads[0]) == len(q.pool)
               for q in evidence.queries)


@pytest.mark.parametrize("bad, message", [
    ('{"a": NaN}', "NaN"), ('{"a": Infinity}', "Infinity"), ('{"a": 1, "a": 2}', "duplicate key"),
])
def test_a_record_file_that_is_not_strict_json_is_refused(tmp_path, bad, message):
    (tmp_path / "results.json").write_text(bad)
    with pytest.raises(RecordError, match=message):
        read_record_json(tmp_path)


def test_schema_errors_name_the_field(runs, tmp_path):
    folder, _ = runs["ce"]
    raw = json.loads((folder / "results.json").read_text())
    for change, field in [(lambda r: r["config"]["task"].pop("data_sha256"), "task.data_sha256"),
                          (lambda r: r["metrics"].__setitem__("RR@10", "high"), "RR@10")]:
        edited = json.loads(json.dumps(raw))
        change(edited)
        (tmp_path / "results.json").write_text(json.dumps(edited))
        with pytest.raises(RecordError, match=field.replace(".", r"\.")) as caught:
            load_record(tmp_path)
        assert str(tmp_path / "results.json") in str(caught.value)
    raw["schema_version"] = 1
    (tmp_path / "results.json").write_text(json.dumps(raw))
    with pytest.raises(RecordError, match="schema_version"):
        load_record(tmp_path)


def test_load_record_reports_a_missing_folder(tmp_path):
    with pytest.raises(RecordError, match=r"no results\.json"):
        load_record(tmp_path)


def test_reproduce_matches_from_the_cache_without_forward_passes(runs):
    folder, _ = runs["ce"]
    result = reproduce(folder, show_progress=False)
    assert result["ok"], result
    assert {f["field"] for f in result["fields"] if f["ok"]} == {"per_query", "config_hash", "system"}
    cache = result["record"]["provenance"]["cache"]
    assert cache["misses"] == 0 and cache["model_calls"] == 0 and cache["hits"] > 0


def test_reproduce_refuses_a_record_whose_metrics_do_not_follow_from_its_scores(runs, capsys):
    folder, _ = runs["bm25"]
    raw = json.loads((folder / "results.json").read_text())
    for values in raw["per_query"].values():
        if "RR@10" in values:
            values["RR@10"] = 0.5
    raw["metrics"]["RR@10"] = 0.5  # a consistent edit: headline and per-query values agree with each other
    (folder / "results.json").write_text(json.dumps(raw))
    assert main(["reproduce", str(folder), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "RR@10" in err and err.count("\n") == 1


def test_an_rrbench_checkpoint_is_claimed_by_its_training_manifest(registered_task, tmp_path, capsys):
    ckpt = make_tiny_bert(tmp_path / "trained")
    weights = sha256_file(ckpt / "model.safetensors")
    manifest = {"loss": "bce", "task": "mini-task", "seed": 13}
    (ckpt / "rrbench_model.json").write_text(json.dumps({
        "weights_sha256": weights, "score_kind": "logit", "training": manifest}))
    rrbench.run(task=registered_task, reranker=str(ckpt), output=str(tmp_path / "out"), show_progress=False)
    (reranker,) = load_record(tmp_path / "out").run_claims.rerankers
    assert reranker.checkpoint is not None and reranker.checkpoint.weights_sha256 == weights
    assert reranker.checkpoint.training_manifest == manifest
    publish(tmp_path / "out", tmp_path / "board")

    # a checkpoint whose manifest names other weights than the ones it holds is refused at run time
    (ckpt / "rrbench_model.json").write_text(json.dumps({"weights_sha256": "f" * 64, "training": {"x": 1}}))
    capsys.readouterr()
    code = main(["run", "--task", registered_task, "--reranker", str(ckpt), "--output", str(tmp_path / "lying"),
                 "--quiet"])
    assert code == 2
    assert "not those its manifest declares" in capsys.readouterr().err
    assert not (tmp_path / "lying").exists()


def test_the_board_readme_is_derived_from_verified_records_only(runs, tmp_path, capsys):
    board = tmp_path / "board"
    for folder, _ in runs.values():
        publish(folder, board)
    assert main(["leaderboard", "build", "--leaderboard-dir", str(board)]) == 0
    readme = (board / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 2
    for _, record in runs.values():
        assert f"{record['metrics']['nDCG@10']:.4f}" in readme
    for link in [part.split("](")[1].split(")")[0] for row in rows for part in row.split("[results.json")[1:]]:
        assert (board / link).is_file()
    # hand edits are overwritten; a rebuild gives the same bytes
    (board / "README.md").write_text(readme.replace(rows[0], "| 1 | fake | 1.0 |"))
    assert main(["leaderboard", "check", "--leaderboard-dir", str(board)]) == 2
    assert "leaderboard build" in capsys.readouterr().err
    build(board)
    assert (board / "README.md").read_text() == readme == render(board)
    # a broken record stops the build, naming it
    victim = next(board.glob("*/*/*/results.json"))
    victim.write_text(victim.read_text().replace('"nDCG@10": ', '"nDCG@10": NaN, "x": ', 1))
    assert main(["leaderboard", "build", "--leaderboard-dir", str(board)]) == 2
    assert str(victim) in capsys.readouterr().err


def test_collect_sorts_by_the_main_score(runs, tmp_path):
    for folder, _ in runs.values():
        publish(folder, tmp_path / "b")
    (group,) = collect(tmp_path / "b").values()
    values = [e.main_value for e in group.verified]
    assert values == sorted(values, reverse=True)


def test_the_recorded_command_reproduces_the_config_hash(registered_task, tiny_model, tmp_path):
    """The command carries every option that changes a result; running it again gives the same claims."""
    record = rrbench.run(task=registered_task, reranker=str(tiny_model), output=str(tmp_path / "first"),
                         show_progress=False, instruction="Find the evidence: ", on_oom="fallback", threshold=0.0,
                         reranker_options={"trust_remote_code": True, "engine": False})
    command = record["provenance"]["command"]
    for flag in ("--instruction", "--trust-remote-code", "--reranker-option", "--on-oom", "--threshold"):
        assert flag in command, (flag, command)
    args = shlex.split(command)
    assert args[:2] == ["rrbench", "run"]
    assert main([*args[1:], "--output", str(tmp_path / "again"), "--quiet"]) == 0
    again = load_record(tmp_path / "again")
    assert again.config_hash == record["config_hash"]
    assert again.as_json()["config"] == record["config"]
    assert again.provenance.command == command
    # the hashed claims name a local model by its weights' fingerprint, never by its path
    assert str(tiny_model) not in json.dumps(record["config"])
    assert Path(str(tiny_model)).name not in record["system"]
