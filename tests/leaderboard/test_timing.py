"""``leaderboard check --time``: the verifier's own pairs/s, kept beside the records and shown on the HTML board only;
records made with a replica are speed only and never published on a quality board."""

from __future__ import annotations

import pytest

import rrbench
from rrbench.leaderboard.board import build, publish
from rrbench.leaderboard.html import write_site
from rrbench.leaderboard.rescore import ModelPool
from rrbench.leaderboard.timing import (
    TIMINGS_FILE,
    load_for_timing,
    measured_label,
    read_timings,
    time_leaderboard,
    time_record,
)
from rrbench.leaderboard.verify import verify_record
from rrbench.models.replica import write_replica
from rrbench.models.speed import task_pairs
from rrbench.records.record import load_record
from rrbench.records.schema import ComponentClaim, RecordError
from rrbench.util.errors import RRBenchError

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_timings_go_to_the_side_file_and_the_html_board_never_the_readme(registered_task, tiny_model, tmp_path):
    rrbench.run(task=registered_task, reranker=str(tiny_model), output=str(tmp_path / "ce"), show_progress=False)
    board = tmp_path / "board"
    publish(tmp_path / "ce", board)
    readme = build(board).read_text(encoding="utf-8")
    path, entries, skipped = time_leaderboard(board, pairs=4)
    assert path == board / TIMINGS_FILE and len(entries) == 1 and not skipped
    entry = entries[0]
    assert entry["kind"] == "weights" and not entry["speed_only"] and entry["measured_pairs_per_s"] > 0
    assert entry["machine"].startswith("CPU ") and entry["pairs"] == 4
    # the claimed figure is the record's provenance.pairs_per_s, never re-derived from the timing
    claimed = load_record(tmp_path / "ce").provenance.pairs_per_s
    assert entry["claimed_pairs_per_s"] == claimed
    assert build(board).read_text(encoding="utf-8") == readme  # the README stays a function of the records
    assert "measured by the verifier" not in readme
    timings = read_timings(path)
    assert set(timings) == {entry["config_hash"]}
    site = write_site(board, tmp_path / "site")
    page = next(p for p in site.parent.glob("*.html") if p.name != "index.html").read_text(encoding="utf-8")
    assert "measured by the verifier on CPU" in page and measured_label(entry).split(" measured")[0] in page


def test_a_zoo_model_without_weights_is_timed_as_a_replica_marked_speed_only(registered_task, tiny_model, tmp_path):
    rrbench.run(task=registered_task, reranker=str(tiny_model), output=str(tmp_path / "ce"), show_progress=False)
    record = load_record(tmp_path / "ce")
    zoo = ComponentClaim(kind="rerankers", id="minilm-l12", plugin="rrbench", distribution="rrbench",
                         settings={"max_length": 64, "dtype": "float32"})
    record = record.model_copy(update={"config": record.run_claims.model_copy(update={"rerankers": [zoo]})})
    timed = time_record(record, task_pairs(registered_task, "dev_select", 3), ModelPool())
    assert timed["kind"] == "replica" and timed["speed_only"] and timed["measured_pairs_per_s"] > 0
    assert "replica: speed only" in measured_label(timed)


def test_a_reranker_that_neither_loads_nor_has_an_architecture_is_not_timed():
    claim = ComponentClaim(kind="rerankers", id="local-model@0123456789abcdef", plugin="rrbench",
                           weights_sha256="0" * 64, settings={"dtype": "float32"})
    with pytest.raises(RRBenchError, match=r"not on this machine.*no zoo architecture to replicate"):
        load_for_timing(claim, ModelPool(), {"batch_size": 8})


def test_a_run_with_a_replica_is_speed_only_and_never_published(registered_task, tmp_path):
    folder = write_replica("minilm-l12", tmp_path / "replica", texts=["a query", "a document"],
                           overrides={"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                      "intermediate_size": 64})
    rrbench.run(task=registered_task, reranker=str(folder), output=str(tmp_path / "rep"), show_progress=False)
    assert load_record(tmp_path / "rep").provenance.speed_only
    with pytest.raises(RecordError, match=r"provenance\.speed_only"):
        verify_record(tmp_path / "rep")
    with pytest.raises(RecordError, match="never ranked on quality"):
        publish(tmp_path / "rep", tmp_path / "board")
    assert not (tmp_path / "board").exists() or not list((tmp_path / "board").glob("*@*"))
