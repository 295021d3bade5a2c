"""Result records: strict JSON, schema checks, reproduce, publish gate, leaderboard built from records only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import rrbench
from rrbench.cli.main import main
from rrbench.util.io import sha256_file
from rrbench.leaderboard.board import build, collect, publish, render
from rrbench.records.record import RecordError, check_record, load_record, loads_strict
from rrbench.leaderboard.reproduce import reproduce
from rrbench.testing.fixtures import make_tiny_bert


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def runs(registered_task, tiny_model, tmp_path):
    """Two real records on the mini task: BM25 alone and BM25 -> tiny cross-encoder."""
    bm25 = rrbench.run(task=registered_task, output=str(tmp_path / "bm25"), show_progress=False)
    ce = rrbench.run(task=registered_task, reranker=str(tiny_model), output=str(tmp_path / "ce"), show_progress=False)
    return {"bm25": (tmp_path / "bm25", bm25), "ce": (tmp_path / "ce", ce)}


def _edit(folder: Path, change) -> Path:
    """Copy a record folder and apply ``change`` to its results.json (a tampered copy)."""
    target = folder.with_name(folder.name + "-tampered")
    shutil.copytree(folder, target)
    record = json.loads((target / "results.json").read_text())
    change(record)
    (target / "results.json").write_text(json.dumps(record))
    return target


def test_records_are_strict_json_with_schema_and_reproduce_command(runs):
    folder, record = runs["ce"]
    text = (folder / "results.json").read_text()
    loaded = loads_strict(text, "x")  # would raise on NaN/Infinity or duplicate keys
    assert loaded["schema_version"] == 1
    assert check_record(loaded) == []
    manifest = loaded["manifest"]
    assert manifest["command"].startswith("rrbench run ") and "--reranker" in manifest["command"]
    assert manifest["run_config"]["reranker"] == record["manifest"]["run_config"]["reranker"]
    assert manifest["checkpoint"] is None  # a plain local cross-encoder, not an rrbench-trained one


@pytest.mark.parametrize("bad, message", [
    ('{"a": NaN}', "NaN"), ('{"a": Infinity}', "Infinity"), ('{"a": 1, "a": 2}', "duplicate key"),
])
def test_non_strict_json_is_rejected(bad, message):
    with pytest.raises(RecordError, match=message):
        loads_strict(bad, "results.json")


def test_schema_checks_name_what_is_wrong(runs):
    _, record = runs["ce"]
    broken = json.loads(json.dumps({k: v for k, v in record.items() if k != "output_dir"}))
    del broken["manifest"]["task"]["data_sha256"]
    broken["schema_version"] = 99
    broken["metrics"]["RR@10"] = "high"
    problems = check_record(broken)
    assert any("manifest.task.data_sha256: missing" in p for p in problems)
    assert any("schema_version 99" in p for p in problems)
    assert any("metrics.RR@10" in p for p in problems)


def test_reproduce_matches_from_cache_without_forward_passes(runs):
    folder, _ = runs["ce"]
    result = reproduce(folder)
    assert result["ok"] and result["config_hash_matches"]
    cache = result["record"]["manifest"]["cache"]
    assert cache["misses"] == 0 and cache["model_calls"] == 0 and cache["hits"] > 0


def test_reproduce_detects_a_changed_metric(runs, capsys):
    folder, _ = runs["bm25"]

    def change(record):  # consistent forgery: headline and per-query values both edited
        for values in record["per_query"].values():
            if "RR@10" in values:
                values["RR@10"] = 0.5
        record["metrics"]["RR@10"] = 0.5

    assert main(["reproduce", str(_edit(folder, change)), "--quiet"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_publish_accepts_a_good_record_and_refuses_tampered_ones(runs, tmp_path, capsys):
    board = tmp_path / "board"
    folder, record = runs["ce"]
    published = publish(folder, board)
    assert published.parent == board / f"{Path(record['manifest']['task']['id'])}@1" / "dev_select"
    assert (published / "run.trec").read_bytes() == (folder / "run.trec").read_bytes()
    with pytest.raises(RecordError, match="already published"):
        publish(folder, board)
    assert publish(folder, board, replace=True) == published

    def forge_metric(r):
        r["metrics"]["nDCG@10"] = 0.99
        for values in r["per_query"].values():
            if "nDCG@10" in values:
                values["nDCG@10"] = 0.99

    cases = {
        "does not follow from run.trec": forge_metric,
        "data_sha256": lambda r: r["manifest"]["task"].__setitem__("data_sha256", "0" * 64),
        "manifest.command: missing": lambda r: r["manifest"].pop("command"),
        "not the mean of its per-query values": lambda r: r["metrics"].__setitem__("R@10", 0.123),
        "fall back|replaced by the retriever": lambda r: r["manifest"].__setitem__(
            "reranker_fallback", {"reason": "out of memory"}),
    }
    for message, change in cases.items():
        tampered = _edit(folder, change)
        assert main(["publish", str(tampered), "--leaderboard-dir", str(board)]) == 2
        err = capsys.readouterr().err
        assert any(m in err for m in message.split("|")), (message, err)
        assert err.count("\n") == 1  # one line
        shutil.rmtree(tampered)

    nan_copy = folder.with_name("nan")
    shutil.copytree(folder, nan_copy)
    text = (nan_copy / "results.json").read_text().replace('"R@10": 1.0', '"R@10": NaN', 1)
    (nan_copy / "results.json").write_text(text)
    assert main(["publish", str(nan_copy), "--leaderboard-dir", str(board)]) == 2
    assert "not strict JSON" in capsys.readouterr().err


def test_publish_requires_a_training_manifest_for_rrbench_checkpoints(registered_task, tmp_path, capsys):
    ckpt = make_tiny_bert(tmp_path / "trained")
    weights = sha256_file(ckpt / "model.safetensors")
    (ckpt / "rrbench_model.json").write_text(json.dumps({
        "weights_sha256": weights, "score_kind": "logit",
        "training_manifest": {"loss": "bce", "task": "mini-task", "seed": 13}}))
    record = rrbench.run(task=registered_task, reranker=str(ckpt), output=str(tmp_path / "out"), show_progress=False)
    checkpoint = record["manifest"]["checkpoint"]
    assert checkpoint["weights_sha256"] == weights and checkpoint["matches_declared"] is True
    assert checkpoint["training_manifest"] == {"loss": "bce", "task": "mini-task", "seed": 13}
    publish(tmp_path / "out", tmp_path / "board")

    stripped = _edit(tmp_path / "out", lambda r: r["manifest"]["checkpoint"].__setitem__("training_manifest", None))
    assert main(["publish", str(stripped), "--leaderboard-dir", str(tmp_path / "board2")]) == 2
    assert "training_manifest" in capsys.readouterr().err

    (ckpt / "rrbench_model.json").write_text(json.dumps({"weights_sha256": "f" * 64, "training_manifest": {"x": 1}}))
    rrbench.run(task=registered_task, reranker=str(ckpt), output=str(tmp_path / "lying"), show_progress=False)
    assert main(["publish", str(tmp_path / "lying"), "--leaderboard-dir", str(tmp_path / "board3")]) == 2
    assert "do not match the sha256" in capsys.readouterr().err


def test_leaderboard_is_rebuilt_from_records_only(runs, tmp_path, capsys):
    board = tmp_path / "board"
    for folder, _ in runs.values():
        publish(folder, board)
    assert main(["leaderboard", "build", "--leaderboard-dir", str(board)]) == 0
    readme = (board / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 2
    scores = [float(row.split("|")[3].strip().strip("*")) for row in rows]
    assert scores == sorted(scores, reverse=True)
    for name, (_, record) in runs.items():
        assert f"{record['metrics']['nDCG@10']:.4f}" in readme
    for link in [part.split("](")[1].rstrip(") |") for row in rows for part in row.split("[results.json")[1:]]:
        assert (board / link).is_file()
    # the README is derived data: hand edits are overwritten, a rebuild gives the same bytes
    (board / "README.md").write_text(readme.replace(rows[0], "| 1 | fake | 1.0 |"))
    build(board)
    assert (board / "README.md").read_text() == readme == render(board)
    # a broken record stops the build, naming it
    victim = next(board.glob("*/*/*/results.json"))
    victim.write_text(victim.read_text().replace('"nDCG@10": ', '"nDCG@10": NaN, "x": ', 1))
    assert main(["leaderboard", "build", "--leaderboard-dir", str(board)]) == 2
    assert str(victim) in capsys.readouterr().err


def test_collect_sorts_by_main_score(runs, tmp_path):
    for folder, _ in runs.values():
        publish(folder, tmp_path / "b")
    (entries,) = collect(tmp_path / "b").values()
    values = [e.main_value for e in entries]
    assert values == sorted(values, reverse=True)


def test_load_record_reports_missing_folder(tmp_path):
    with pytest.raises(RecordError, match="no results.json"):
        load_record(tmp_path)


def test_recorded_command_is_complete_and_reproduces_the_config_hash(registered_task, tiny_model, tmp_path):
    """The manifest's command carries every option that changes a result; running it gives the same config hash."""
    import shlex

    record = rrbench.run(task=registered_task, reranker=str(tiny_model), output=str(tmp_path / "first"),
                         show_progress=False, instruction="Find the evidence: ", on_oom="fallback", threshold=0.0,
                         reranker_options={"trust_remote_code": True, "engine": False})
    command = record["manifest"]["command"]
    for flag in ("--instruction", "--trust-remote-code", "--reranker-option", "--on-oom", "--threshold"):
        assert flag in command, (flag, command)
    args = shlex.split(command)
    assert args[:2] == ["rrbench", "run"]
    assert main([*args[1:], "--output", str(tmp_path / "again"), "--quiet"]) == 0
    again = load_record(tmp_path / "again")
    assert again["manifest"]["config_hash"] == record["manifest"]["config_hash"]
    assert again["manifest"]["config"] == record["manifest"]["config"]
    assert again["manifest"]["command"] == command
    # the hashed configuration names a local model by its weights' fingerprint, never by its path
    assert str(tiny_model) not in json.dumps(record["manifest"]["config"])
    assert record["manifest"]["config"]["reranker"]["id"].startswith("local@")
