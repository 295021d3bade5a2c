"""The plugin is discovered through its installed entry point and works end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

import rrbench
from rrbench.testing import make_mini_task, plugin_info, resolve_component


def test_discovered_through_entry_point():
    info = plugin_info("sklearn")
    assert info.distribution == "rrbench-sklearn"
    assert info.status == "ok"
    assert resolve_component("retrievers", "tfidf-chargram").id == "tfidf-char"
    listing = subprocess.run([sys.executable, "-m", "rrbench.cli", "list", "retrievers", "--json"],
                             capture_output=True, text=True, check=True)
    rows = {row["id"]: row for row in json.loads(listing.stdout)}
    assert rows["tfidf"]["plugin"] == "sklearn"


def test_char_ngrams_match_inflections_that_words_miss():
    docs = ["Myocardial infarctions were reduced.", "The weather was sunny.", "Infarct size was measured."]
    char = rrbench.get_retriever("tfidf-char")
    char.index(docs)
    word = rrbench.get_retriever("tfidf")
    word.index(docs)
    query = "infarction"
    char_scores, word_scores = char.score_all(query), word.score_all(query)
    assert np.argmax(char_scores) == 0 and char_scores[2] > char_scores[1] == 0.0
    assert word_scores[2] == 0.0  # no shared word with "infarct"
    top, scores = char.search(query, 2)
    assert top.tolist() == [0, 2] and scores[0] > scores[1]


def test_run_with_plugin_retriever(tmp_path):
    task = make_mini_task(tmp_path / "mini")
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "rrbench.cli", "run", "--task", str(task), "--retriever",
                             "tfidf-char", "--output", str(out), "--quiet"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "results.json").read_text())
    assert record["config"]["generator"]["retrievers"][0]["id"] == "tfidf-char"
    assert 0.0 < record["metrics"]["nDCG@10"] <= 1.0
