"""Score cache: zero recompute on re-run, weights-sensitive fingerprints, listwise keys, concurrent writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import rrbench
from rrbench.cli.main import main
from rrbench.components.bases import ListwiseReranker
from rrbench.components.identity import model_fingerprint
from rrbench.models.factory import load_reranker
from rrbench.pipeline.score_cache import ScoreCache, pair_key, wrap
from rrbench.testing.fixtures import make_tiny_bert, write_fake_plugin

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@contextmanager
def count_forwards():
    """Count real torch module forward calls anywhere in the process (independent of how a backend batches)."""
    import torch

    calls = [0]
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        yield calls
    finally:
        handle.remove()


def _run(task: Path, model: Path, out: Path, **kw):
    return rrbench.run(task=str(task), reranker=str(model), output=str(out), show_progress=False, **kw)


def test_rerun_of_finished_configuration_does_zero_forward_passes(mini_task, tiny_model, tmp_path):
    with count_forwards() as first_calls:
        first = _run(mini_task, tiny_model, tmp_path / "a")
    assert first_calls[0] > 0
    pairs = first["provenance"]["pairs_scored"]
    assert pairs > 0
    assert first["provenance"]["cache"]["misses"] == pairs and first["provenance"]["cache"]["hits"] == 0

    with count_forwards() as second_calls:
        second = _run(mini_task, tiny_model, tmp_path / "b")
    assert second_calls[0] == 0
    cache = second["provenance"]["cache"]
    assert (cache["hits"], cache["misses"], cache["model_calls"]) == (pairs, 0, 0)
    assert second["metrics"] == first["metrics"]
    assert second["config_hash"] == first["config_hash"]
    assert second["provenance"]["pairs_per_s"] is None  # throughput is never measured on cache look-ups
    # identical run files: the cached float64 scores are exactly the computed ones
    assert (tmp_path / "a" / "run.trec").read_text() == (tmp_path / "b" / "run.trec").read_text()


def _rate_is_model_pairs_over_model_time(provenance: dict, pairs: int) -> None:
    seconds = provenance["rerank_time_s"]  # rounded to the millisecond
    assert pairs / (seconds + 0.0005) - 0.01 <= provenance["pairs_per_s"] <= pairs / max(seconds - 0.0005, 1e-9) + 0.01


def test_pairs_per_s_counts_model_pairs_over_model_time(tiny_model, tmp_path, cli):
    """Issue 26: a partly cached run reports the model's speed on what the model scored, and the cache note never
    counts more hits than look-ups, also when a fit split is scored too."""
    from rrbench.testing.fixtures import make_train_task

    mini_task = make_train_task(tmp_path / "train-task")
    first = _run(mini_task, tiny_model, tmp_path / "a", top_k_rerank=2)["provenance"]
    assert first["cache"]["computed"] == first["pairs_scored"] > 0
    _rate_is_model_pairs_over_model_time(first, first["pairs_scored"])
    # top 3 of each pool: the top 2 are cached, the third is new; the fit split (train) is scored by the model too
    more = _run(mini_task, tiny_model, tmp_path / "b", top_k_rerank=3, calibrator="platt",
                calibrate_on="train")["provenance"]
    cache = more["cache"]
    assert cache["hits"] == first["pairs_scored"] and cache["hits"] + cache["misses"] == more["pairs_scored"]
    assert 0 < cache["computed"] == cache["misses"] and cache["fit_split"]["computed"] > 0
    _rate_is_model_pairs_over_model_time(more, cache["computed"])
    assert more["pairs_per_s_note"].startswith(f"{cache['hits']} of {more['pairs_scored']} score look-ups")
    again = cli("run", "--task", str(mini_task), "--reranker", str(tiny_model), "--top-k-rerank", "3", "--quiet",
                "--output", str(tmp_path / "c"))
    assert again.returncode == 0, again.stderr
    assert f"pairs scored {more['pairs_scored']} (all from the score cache);" in again.stdout
    assert "pairs/s" not in again.stdout


def test_scores_are_shared_across_candidate_settings_but_not_across_options(mini_task, tiny_model, tmp_path):
    _run(mini_task, tiny_model, tmp_path / "a", top_k_rerank=20)
    smaller = _run(mini_task, tiny_model, tmp_path / "b", top_k_rerank=2)  # a subset of the pairs: all cached
    assert smaller["provenance"]["cache"]["misses"] == 0
    other_length = _run(mini_task, tiny_model, tmp_path / "c", max_length=64)  # changes the key
    assert other_length["provenance"]["cache"]["hits"] == 0
    assert other_length["config_hash"] != smaller["config_hash"]


def test_no_cache_bypasses_the_store(mini_task, tiny_model, tmp_path):
    record = _run(mini_task, tiny_model, tmp_path / "a", use_cache=False)
    assert record["provenance"]["cache"] == {"enabled": False, "reason": "disabled"}
    assert not (Path(os.environ["RRBENCH_CACHE"]) / "scores.sqlite").exists()


def test_retraining_into_the_same_folder_invalidates_scores(mini_task, tmp_path):
    folder = make_tiny_bert(tmp_path / "ckpt", seed=0)
    first = _run(mini_task, folder, tmp_path / "a")
    make_tiny_bert(folder, seed=1)  # "retrain": new weights, same path
    with count_forwards() as calls:
        second = _run(mini_task, folder, tmp_path / "b")
    assert calls[0] > 0
    assert second["provenance"]["cache"]["hits"] == 0
    assert second["provenance"]["cache"]["fingerprints"] != first["provenance"]["cache"]["fingerprints"]
    assert second["config_hash"] != first["config_hash"]
    assert (tmp_path / "a" / "run.trec").read_text() != (tmp_path / "b" / "run.trec").read_text()


def test_fingerprint_covers_scoring_options_not_speed_options(tiny_model):
    base = model_fingerprint(load_reranker(str(tiny_model), batch_size=8))[0]
    assert model_fingerprint(load_reranker(str(tiny_model), batch_size=64))[0] == base
    assert model_fingerprint(load_reranker(str(tiny_model), max_length=32))[0] != base
    assert model_fingerprint(load_reranker(str(tiny_model), dtype="bfloat16"))[0] != base
    assert model_fingerprint(load_reranker(str(tiny_model), instruction="Judge: "))[0] != base


class MeanCentredListwise(ListwiseReranker):
    """A genuinely listwise model for the test: the tiny cross-encoder's logits centred on the list's mean,
    so every score depends on its neighbours."""

    def __init__(self, inner):
        super().__init__(inner.spec, inner.options)
        self.inner = inner
        self.weights_path = inner.weights_path
        self.calls = 0

    def score_list(self, query: str, documents: Sequence[str]) -> np.ndarray:
        self.calls += 1
        logits = self.inner.score_pairs([query] * len(documents), list(documents))
        return logits - logits.mean()


def test_listwise_keys_depend_on_the_whole_ordered_group(tiny_model, tmp_path):
    inner = MeanCentredListwise(load_reranker(str(tiny_model)))
    cached = wrap(inner, ScoreCache(tmp_path / "c"))
    assert isinstance(cached, ListwiseReranker)
    q, a, b, c, d = "aspirin prevents heart attacks", "aspirin reduces risk", "tea was not studied", \
        "bone density", "walking daily"
    first = cached.score_list(q, [a, b, c])
    assert inner.calls == 1
    np.testing.assert_array_equal(cached.score_list(q, [a, b, c]), first)
    assert inner.calls == 1  # hit
    other_neighbour = cached.score_list(q, [a, b, d])
    assert inner.calls == 2  # a and b have new neighbours: recomputed, and their scores really differ
    assert not np.array_equal(other_neighbour[:2], first[:2])
    cached.score_list(q, [b, a, c])
    assert inner.calls == 3  # order is part of the key
    assert cached.cache_stats.as_dict() == {"hits": 3, "misses": 9, "computed": 9, "model_calls": 3}


def test_pointwise_keys_ignore_neighbours(tiny_model, tmp_path):
    cached = wrap(load_reranker(str(tiny_model)), ScoreCache(tmp_path / "c"))
    together = cached.score_pairs(["q one", "q one"], ["first sentence", "second sentence"])
    with count_forwards() as calls:
        alone = cached.score_pairs(["q one"], ["second sentence"])
    assert calls[0] == 0
    assert alone[0] == together[1]


WRITER = textwrap.dedent("""
    import sys, time
    from rrbench.pipeline.score_cache import ScoreCache, pair_key
    cache_dir, order, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
    cache = ScoreCache(cache_dir)
    mid = cache.model_id("fp-test", "test-model", {"test": True})
    pairs = [(f"query {i % 37}", f"sentence {i}") for i in range(4000)]
    if order == "reverse":
        pairs.reverse()
    while time.time() < start_at:
        time.sleep(0.005)
    for start in range(0, len(pairs), 40):
        chunk = pairs[start:start + 40]
        keys = [pair_key(q, d) for q, d in chunk]
        have = cache.get_pairs(mid, keys)
        # a deterministic function of the pair stands in for a model here: this test is about storage only
        cache.put_pairs(mid, [(k, float(len(q) * 1000 + int(d.split()[1]))) for k, (q, d) in zip(keys, chunk)
                              if k not in have])
    print("ok")
""")


def test_two_processes_scoring_the_same_pairs_lose_and_corrupt_nothing(tmp_path):
    import time

    start_at = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "c"), order, str(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for order in ("forward", "reverse")]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
    cache = ScoreCache(tmp_path / "c")
    assert cache.integrity_ok()
    mid = cache.model_id("fp-test", "test-model", {})
    pairs = [(f"query {i % 37}", f"sentence {i}") for i in range(4000)]
    found = cache.get_pairs(mid, [pair_key(q, d) for q, d in pairs])
    assert len(found) == 4000
    assert all(found[pair_key(q, d)] == len(q) * 1000 + int(d.split()[1]) for q, d in pairs)
    assert cache.stats()["pair_scores"] == 4000


def test_cache_stats_and_clear_commands(mini_task, tiny_model, tmp_path, capsys):
    _run(mini_task, tiny_model, tmp_path / "a")
    capsys.readouterr()
    assert main(["cache", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["pair_scores"] > 0 and stats["models"][0]["model_id"] == str(tiny_model)
    assert main(["cache", "clear", "--model", "no-such-model"]) == 2
    assert "no scores for model" in capsys.readouterr().err
    assert main(["cache", "clear", "--model", str(tiny_model)]) == 0
    assert f"deleted {stats['pair_scores']} cached scores" in capsys.readouterr().out
    assert main(["cache", "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pair_scores"] == 0


def test_cache_dir_option_and_env(mini_task, tiny_model, tmp_path, monkeypatch):
    record = _run(mini_task, tiny_model, tmp_path / "a", cache_dir=str(tmp_path / "elsewhere"))
    assert record["provenance"]["cache"]["computed"] > 0 and (tmp_path / "elsewhere" / "scores.sqlite").is_file()
    assert str(tmp_path) not in json.dumps(record["provenance"]["cache"])  # a record names no local cache path
    monkeypatch.setenv("RRBENCH_CACHE", "off")
    assert _run(mini_task, tiny_model, tmp_path / "b")["provenance"]["cache"]["enabled"] is False


@pytest.mark.parametrize("bad", [b"not a database at all" * 100])
def test_corrupt_cache_file_is_a_clear_error(tmp_path, bad):
    from rrbench.util.errors import RRBenchError

    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "scores.sqlite").write_bytes(bad)
    with pytest.raises(RRBenchError, match="scores.sqlite"):
        ScoreCache(tmp_path / "c")


EDITED_SOURCE = """
import numpy as np
from rrbench.plugin import PointwiseReranker, RerankerSpec, hookimpl

SIGN = {sign}


class Overlap(PointwiseReranker):
    def cache_fingerprint(self):
        return {{"version": 1}}  # the author forgets to bump it

    def score_pairs(self, queries, documents):
        words = [len(set(q.lower().split()) & set(d.lower().rstrip('.').split())) for q, d in zip(queries, documents)]
        return SIGN * np.asarray(words, dtype=float) + 0.001 * np.arange(len(words))


@hookimpl
def register_rerankers(register):
    register(RerankerSpec(id="overlap", loader="rrbench_edited:Overlap", score_kind="similarity"))
"""


def test_editing_a_local_plugin_never_serves_its_old_cached_scores(cli, mini_task, tmp_path):
    """Issue 26: a plugin installed in editable mode changes its scoring code under an unchanged cache_fingerprint.
    The score cache is keyed by a hash of its source too, so the next run scores afresh (and says why); the config
    hash, which names the system, does not move."""
    root = tmp_path / "site"
    write_fake_plugin(root, "rrbench-edited", "rrbench_edited", EDITED_SOURCE.format(sign=1), ep_name="edited",
                      version="0.1", editable=True)
    env = {"PYTHONPATH": str(root), "RRBENCH_LOAD_PLUGINS": "edited"}

    def run(name: str, *extra: str) -> dict:
        result = cli("run", "--task", str(mini_task), "--reranker", "overlap", "--quiet", "--output",
                     str(tmp_path / name), *extra, env=env)
        assert result.returncode == 0, result.stderr
        record = json.loads((tmp_path / name / "results.json").read_text())
        record["stderr"] = result.stderr
        return record

    first = run("first")
    assert first["provenance"]["cache"]["misses"] > 0
    cached = run("cached")
    assert cached["provenance"]["cache"]["misses"] == 0 and "source code changed" not in cached["stderr"]
    (root / "rrbench_edited.py").write_text(textwrap.dedent(EDITED_SOURCE.format(sign=-1)), encoding="utf-8")
    edited = run("edited")
    truth = run("truth", "--no-cache")
    assert edited["provenance"]["cache"]["hits"] == 0, "the old scores were served"
    assert edited["metrics"] == truth["metrics"] != first["metrics"]
    assert "reranker 'overlap': its source code changed" in edited["stderr"]
    assert "plugin 'edited' (distribution rrbench-edited 0.1)" in edited["stderr"]
    assert edited["config_hash"] == first["config_hash"]
