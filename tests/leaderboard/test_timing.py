"""``leaderboard check --time``: the verifier's own pairs/s, kept beside the records and shown on the HTML board only."""

from __future__ import annotations

import copy
import json

import pytest

import rrbench
from rrbench.leaderboard.board import build, publish
from rrbench.leaderboard.html import write_site
from rrbench.leaderboard.timing import (TIMINGS_FILE, load_for_timing, measured_label, read_timings,
                                        time_leaderboard, time_record)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_timings_go_to_the_side_file_and_the_html_board_never_the_readme(registered_task, tiny_model, tmp_path):
    rrbench.run(task=registered_task, reranker=str(tiny_model), output=str(tmp_path / "ce"), show_progress=False)
    board = tmp_path / "board"
    publish(tmp_path / "ce", board)
    readme = build(board).read_text(encoding="utf-8")
    path, entries = time_leaderboard(board, pairs=4)
    assert path == board / TIMINGS_FILE and len(entries) == 1
    entry = entries[0]
    assert entry["kind"] == "weights" and not entry["speed_only"] and entry["measured_pairs_per_s"] > 0
    assert entry["machine"].startswith("CPU ") and entry["pairs"] == 4
    assert build(board).read_text(encoding="utf-8") == readme  # the README stays a function of the records
    timings = read_timings(path)
    assert set(timings) == {entry["config_hash"]}
    site = write_site(board, tmp_path / "site")
    page = next(p for p in site.parent.glob("*.html") if p.name != "index.html").read_text(encoding="utf-8")
    assert "measured by the verifier on CPU" in page and measured_label(entry).split(" measured")[0] in page


def test_a_zoo_model_without_weights_is_timed_as_a_replica_marked_speed_only(registered_task, tiny_model, tmp_path):
    rrbench.run(task=registered_task, reranker=str(tiny_model), output=str(tmp_path / "ce"), show_progress=False)
    record = json.loads((tmp_path / "ce" / "results.json").read_text(encoding="utf-8"))
    record = copy.deepcopy(record)
    reranker = record["manifest"]["components"]["reranker"]
    reranker.update(id="minilm-l12", weights_path=None, hub_id="cross-encoder/ms-marco-MiniLM-L-12-v2")
    timed = time_record(record, pairs=3)
    assert timed["kind"] == "replica" and timed["speed_only"] and timed["measured_pairs_per_s"] > 0
    assert "replica: speed only" in measured_label(timed)


def test_a_reranker_that_neither_loads_nor_has_an_architecture_is_one_line():
    from rrbench.util.errors import UsageError

    with pytest.raises(UsageError, match="cannot time reranker cross-encoder"):
        load_for_timing({"id": "cross-encoder", "options": {"batch_size": 8}})
