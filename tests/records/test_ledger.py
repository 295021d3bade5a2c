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


def test_second_use_is_refused_and_later_configurations_are_flagged(tmp_path):
    path = tmp_path / "leaderboard" / "test-ledger.jsonl"
    first = ledger.claim("a" * 64, "t@1", "d1", command="rrbench run ...", path=path)
    assert first["selected_after_test_seen"] is False and "test_first_seen" not in first
    assert ledger.previous_use("a" * 64, path)["config_hash"] == "a" * 64
    with pytest.raises(UsageError, match="one-time"):
        ledger.claim("a" * 64, "t@1", "d1", path=path)
    # another configuration of the same task, after test was seen: allowed once, flagged
    second = ledger.claim("b" * 64, "t@1", "d1", path=path)
    assert second["selected_after_test_seen"] is True
    assert second["test_first_seen"]["config_hash"] == "a" * 64
    # another task's data: not flagged
    assert ledger.claim("c" * 64, "u@1", "d2", path=path)["selected_after_test_seen"] is False
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [e["config_hash"][0] for e in lines] == ["a", "b", "c"]  # append-only, refused claims left no line


def test_env_var_and_corrupt_ledger(tmp_path, monkeypatch):
    path = tmp_path / "elsewhere.jsonl"
    monkeypatch.setenv("RRBENCH_TEST_LEDGER", str(path))
    assert ledger.ledger_path() == path
    ledger.claim("x" * 64, "t@1", "d")
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(UsageError, match="line 2 .*append-only.*malformed JSON"):
        ledger.read()


def _claim(args):
    path, i = args
    try:
        ledger.claim("same" * 16, "t@1", "d", path=path)
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
    assert [e["config_hash"] for e in entries] == [record["manifest"]["config_hash"]]
    assert record["manifest"]["test_split"]["entry"]["config_hash"] == record["manifest"]["config_hash"]
    assert record["manifest"]["test_split"]["selected_after_test_seen"] is False

    again = cli("run", "--split", "test", "--final", "--quiet", "--output", str(tmp_path / "b"), env=env)
    assert again.returncode == 2 and "already used the test split" in again.stderr
    assert not (tmp_path / "b").exists() and len(ledger.read(tmp_path / "ledger.jsonl")) == 1
    # another configuration after test was seen: runs once, flagged in its record
    other = cli("run", "--split", "test", "--final", "--quiet", "--top-k-retriever", "5", "--output",
                str(tmp_path / "c"), env=env)
    assert other.returncode == 0, other.stderr
    flagged = json.loads((tmp_path / "c" / "results.json").read_text())["manifest"]["test_split"]
    assert flagged["selected_after_test_seen"] is True
    # a configuration file cannot unlock the test split
    (tmp_path / "cfg.yaml").write_text("final: true\ntop_k_retriever: 7\n")
    via_file = cli("run", "--split", "test", "--config", str(tmp_path / "cfg.yaml"), "--output",
                   str(tmp_path / "d"), env=env)
    assert via_file.returncode == 2 and "without --final" in via_file.stderr
