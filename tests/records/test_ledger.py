"""The one-time test split: refused without --final, one use per configuration, later selections flagged."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from rrbench.records import ledger
from rrbench.util.errors import UsageError


def test_test_split_needs_final():
    with pytest.raises(UsageError, match="--split test is refused without --final"):
        ledger.check_split("test", final=False)
    ledger.check_split("test", final=True)
    ledger.check_split("dev_final", final=False)


D1, D2 = "d" * 64, "e" * 64


def _claim_line(config_hash: str, data: str = D1, path=None, task: str = "t@1") -> dict:
    return ledger.claim(config_hash=config_hash, task=task, task_data_sha256=data, results_sha256="f" * 64,
                        purpose="run", command="rrbench run ...", path=path)


def test_second_use_is_refused_and_later_configurations_are_flagged(tmp_path):
    path = tmp_path / "leaderboard" / "test-ledger.jsonl"
    first = _claim_line("a" * 64, path=path)
    assert first["selected_after_test_seen"] is False
    (line,) = ledger.uses_of("a" * 64, path)
    assert line.config_hash == "a" * 64 and line.results_sha256 == "f" * 64 and line.task_data_sha256 == D1
    with pytest.raises(UsageError, match="one-time"):
        _claim_line("a" * 64, path=path)
    # another configuration of the same task data, after test was seen: allowed once, flagged
    assert _claim_line("b" * 64, path=path)["selected_after_test_seen"] is True
    # another task's data: not flagged
    assert _claim_line("c" * 64, data=D2, path=path, task="u@1")["selected_after_test_seen"] is False
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [e["config_hash"][0] for e in lines] == ["a", "b", "c"]  # append-only, refused claims left no line


def test_env_var_and_corrupt_ledger(tmp_path, monkeypatch):
    path = tmp_path / "elsewhere.jsonl"
    monkeypatch.setenv("RRBENCH_TEST_LEDGER", str(path))
    assert ledger.ledger_path() == path
    _claim_line("1" * 64)
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(UsageError, match="line 2 .*append-only.*malformed JSON"):
        ledger.read()


def test_a_hand_written_short_line_is_refused(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_text(json.dumps({"config_hash": "a" * 64, "task": "t@1"}) + "\n")
    with pytest.raises(UsageError, match="line 1: not a test ledger line"):
        ledger.read(path)


def _claim(args):
    path, i = args
    try:
        _claim_line("5" * 64, path=path)
        return "ok"
    except UsageError:
        return "refused"


def test_concurrent_claims_of_one_configuration_admit_exactly_one(tmp_path):
    path = str(tmp_path / "ledger.jsonl")
    with multiprocessing.get_context("fork").Pool(4) as pool:
        outcomes = pool.map(_claim, [(path, i) for i in range(8)])
    assert outcomes.count("ok") == 1 and outcomes.count("refused") == 7
    assert len((tmp_path / "ledger.jsonl").read_text().splitlines()) == 1


def test_rrbench_run_on_test_once(tmp_path, cli):
    """`rrbench run --split test`: refused without --final; once with it (ledger + manifest); never twice."""
    env = {"RRBENCH_TEST_LEDGER": str(tmp_path / "ledger.jsonl")}
    refused = cli("run", "--split", "test", "--output", str(tmp_path / "none"), env=env)
    assert refused.returncode == 2 and "without --final" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / "none").exists()

    first = cli("run", "--split", "test", "--final", "--quiet", "--output", str(tmp_path / "a"), env=env)
    assert first.returncode == 0, first.stderr
    record = json.loads((tmp_path / "a" / "results.json").read_text())
    entries = ledger.read(tmp_path / "ledger.jsonl")
    assert [e.config_hash for e in entries] == [record["config_hash"]]
    assert record["provenance"]["test_split"]["line"]["config_hash"] == record["config_hash"]
    assert record["provenance"]["test_split"]["selected_after_test_seen"] is False

    again = cli("run", "--split", "test", "--final", "--quiet", "--output", str(tmp_path / "b"), env=env)
    assert again.returncode == 2 and "already used the test split" in again.stderr
    assert not (tmp_path / "b").exists() and len(ledger.read(tmp_path / "ledger.jsonl")) == 1
    # another configuration after test was seen: runs once, flagged in its record
    other = cli("run", "--split", "test", "--final", "--quiet", "--top-k-retriever", "5", "--output",
                str(tmp_path / "c"), env=env)
    assert other.returncode == 0, other.stderr
    flagged = json.loads((tmp_path / "c" / "results.json").read_text())["provenance"]["test_split"]
    assert flagged["selected_after_test_seen"] is True
    # a configuration file cannot unlock the test split
    (tmp_path / "cfg.yaml").write_text("final: true\ntop_k_retriever: 7\n")
    via_file = cli("run", "--split", "test", "--config", str(tmp_path / "cfg.yaml"), "--output",
                   str(tmp_path / "d"), env=env)
    assert via_file.returncode == 2 and "without --final" in via_file.stderr
