"""`rrbench run` end to end on a tiny task and a tiny model the test builds; exit codes and error messages."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval


def _trec_metrics(out: Path, k: int) -> dict[str, dict[str, float]]:
    qrels, run = {}, {}
    for line in (out / "qrels.trec").read_text().splitlines():
        q, _, d, g = line.split()
        qrels.setdefault(q, {})[d] = int(g)
    for line in (out / "run.trec").read_text().splitlines():
        q, _, d, _, s, _ = line.split()
        run.setdefault(q, {})[d] = float(s)
    return pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", f"recall.10,{k}"}).evaluate(run)


def _check_run_dir(out: Path, k: int) -> dict:
    text = (out / "results.json").read_text()
    record = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert record["schema_version"] == 2
    for key in ("nDCG@10", "RR@10", "R@10", f"R@{k}", "false_evidence_rate"):
        assert key in record["metrics"]
    for key in ("config", "config_hash", "system", "main_score", "decision", "provenance"):
        assert key in record
    for key in ("rrbench_version", "packages", "hardware", "wall_time_s", "pairs_per_s", "peak_rss_mb", "command"):
        assert key in record["provenance"]
    assert (out / "scores.jsonl.gz").is_file()  # the evidence every derived number is recomputed from
    # scores fall strictly with rank within each query, so trec_eval reads our order
    by_query: dict[str, list[tuple[int, float]]] = {}
    for line in (out / "run.trec").read_text().splitlines():
        q, _, docno, rank, score, _ = line.split()
        post, idx = docno.rsplit(":", 1)
        assert idx.isdigit()
        by_query.setdefault(q, []).append((int(rank), float(score)))
    for rows in by_query.values():
        assert [r for r, _ in rows] == list(range(1, len(rows) + 1))
        assert all(np.diff([s for _, s in rows]) < 0)
    reference = _trec_metrics(out, k)
    has_evidence = [q for q, v in record["per_query"].items() if "nDCG@10" in v]
    assert sorted(reference) == sorted(has_evidence)
    for q in has_evidence:
        assert record["per_query"][q]["nDCG@10"] == pytest.approx(reference[q]["ndcg_cut_10"], abs=1e-9)
        assert record["per_query"][q][f"R@{k}"] == pytest.approx(reference[q][f"recall_{k}"], abs=1e-9)
    assert record["metrics"]["nDCG@10"] == pytest.approx(np.mean([reference[q]["ndcg_cut_10"] for q in has_evidence]), abs=1e-9)
    return record


def test_retriever_only_run(cli, mini_task, tmp_path):
    out = tmp_path / "bm25"
    result = cli("run", "--task", str(mini_task), "--split", "dev_select", "--output", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    record = _check_run_dir(out, 100)
    assert record["metrics"]["false_evidence_rate"] is None  # bm25 has no natural threshold
    assert record["config"]["rerankers"] == []
    assert "nDCG@10" in result.stdout
    with_threshold = cli("run", "--task", str(mini_task), "--output", str(tmp_path / "t"), "--threshold", "1.0",
                         "--quiet")
    assert with_threshold.returncode == 0
    rec = json.loads((tmp_path / "t" / "results.json").read_text())
    assert (rec["decision"]["threshold"], rec["decision"]["source"], rec["decision"]["scale"]) == (1.0, "cli", "bm25")
    assert rec["metrics"]["false_evidence_rate"] is not None


def test_cross_encoder_run_on_tiny_model(cli, mini_task, tiny_model, tmp_path):
    out = tmp_path / "ce"
    result = cli("run", "--task", str(mini_task), "--reranker", str(tiny_model), "--top-k-retriever", "3",
                 "--top-k-rerank", "2", "--output", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    record = _check_run_dir(out, 3)
    assert record["decision"]["threshold"] == 0.0  # logits: natural boundary 0
    assert record["metrics"]["false_evidence_rate"] in (0.0, 0.5, 1.0)
    assert record["provenance"]["pairs_scored"] == sum(min(2, n) for n in (4, 3, 5, 5, 2, 3))
    # pool capped at K=3 per query
    lines = (out / "run.trec").read_text().splitlines()
    assert max(sum(1 for line in lines if line.startswith(q + " ")) for q in ("q1", "q3")) == 3
    # same config through the registered generic backend + --model-path gives identical scores
    out2 = tmp_path / "ce2"
    result = cli("run", "--task", str(mini_task), "--reranker", "cross-encoder", "--model-path", str(tiny_model),
                 "--top-k-retriever", "3", "--top-k-rerank", "2", "--output", str(out2), "--quiet")
    assert result.returncode == 0, result.stderr
    assert [x.split()[:5] for x in lines] == [x.split()[:5] for x in (out2 / "run.trec").read_text().splitlines()]


def test_missing_weights_offline_fails_fast(cli, mini_task, tmp_path):
    out = tmp_path / "never"
    started = time.perf_counter()
    result = cli("run", "--task", str(mini_task), "--reranker", "some-org/not-downloaded-reranker",
                 "--output", str(out), env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert time.perf_counter() - started < 60
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "some-org/not-downloaded-reranker" in result.stderr and "--model-path" in result.stderr
    assert "revision" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_unknown_ids_exit_2_with_suggestions(cli, mini_task, tmp_path):
    result = cli("run", "--task", str(mini_task), "--retriever", "bm52", "--output", str(tmp_path / "x"))
    assert result.returncode == 2 and "Did you mean: bm25" in result.stderr
    result = cli("run", "--reranker", "minilm-l7", "--output", str(tmp_path / "y"))
    assert result.returncode == 2 and "minilm-l6" in result.stderr
    result = cli("run", "--task", str(mini_task), "--split", "tset", "--output", str(tmp_path / "z"))
    assert result.returncode == 2 and "tset" in result.stderr
    result = cli("run", "--task", "no-such-task")
    assert result.returncode == 2 and "unknown task" in result.stderr
    result = cli("run", "--top-k-rerank", "-1")
    assert result.returncode == 2


BAD_RERANKER = """
import numpy as np
from rrbench import RerankerSpec, hookimpl
from rrbench.components.bases import PointwiseReranker

class NaNReranker(PointwiseReranker):
    def score_pairs(self, queries, documents):
        scores = np.zeros(len(queries)); scores[0] = np.nan
        return scores

class ShortReranker(PointwiseReranker):
    def score_pairs(self, queries, documents):
        return np.zeros(max(0, len(queries) - 1))

@hookimpl
def register_rerankers(register):
    register(RerankerSpec(id="nan-reranker", loader="rrbench_bad_rerankers:NaNReranker", score_kind="logit"))
    register(RerankerSpec(id="short-reranker", loader="rrbench_bad_rerankers:ShortReranker", score_kind="logit"))
"""


@pytest.fixture
def bad_plugin(tmp_path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "rrbench_bad_rerankers.py").write_text(textwrap.dedent(BAD_RERANKER))
    info = site / "rrbench_bad_rerankers-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rrbench-bad-rerankers\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[rrbench]\nbad = rrbench_bad_rerankers\n")
    return site


@pytest.mark.parametrize("reranker, message", [("nan-reranker", "non-finite"), ("short-reranker", "returned")])
def test_misbehaving_plugin_is_a_runtime_failure(cli, mini_task, bad_plugin, tmp_path, reranker, message):
    out = tmp_path / reranker
    result = cli("run", "--task", str(mini_task), "--reranker", reranker, "--output", str(out), "--quiet",
                 env={"PYTHONPATH": str(bad_plugin), "RRBENCH_LOAD_PLUGINS": None})
    assert result.returncode == 1
    assert f"reranker '{reranker}'" in result.stderr and message in result.stderr
    assert not out.exists() and not list(tmp_path.glob(f".{reranker}*"))


def test_minilm_bi_encoder_from_wheel(cli, mini_task, tmp_path):
    out = tmp_path / "minilm"
    result = cli("run", "--task", str(mini_task), "--reranker", "minilm-l6", "--output", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    record = _check_run_dir(out, 100)
    reranker = record["config"]["rerankers"][0]
    assert (reranker["id"], reranker["plugin"]) == ("minilm-l6", "rrbench") and reranker["weights_sha256"]
    assert reranker["score_kind"] == "cosine"
    assert record["metrics"]["false_evidence_rate"] is None
    # a real model ranks the obvious evidence first on this toy task
    assert record["metrics"]["nDCG@10"] > 0.8


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: connections are refused


def test_missing_weights_online_fail_fast_after_one_probe(cli, mini_task, tmp_path, monkeypatch):
    """Issue 26: without HF_HUB_OFFLINE the hub is asked once, briefly, with no retry chain: a refused connection,
    a server that never answers and a 404 each end in the one-line message within 3 s of resolution."""
    import http.server
    import socket
    import threading

    from rrbench.models.resolve import resolve_weights
    from rrbench.util.errors import MissingWeightsError

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection into its backlog and never answers

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for port, why in ((_closed_port(), "cannot be reached"), (silent.getsockname()[1], "cannot be reached"),
                          (server.server_address[1], "has no such model or revision")):
            monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
            started = time.perf_counter()
            with pytest.raises(MissingWeightsError, match=why) as info:
                resolve_weights("some-org/not-downloaded-reranker", None, what="reranker x")
            assert time.perf_counter() - started < 3.0, why
            assert f"127.0.0.1:{port}" in str(info.value) and "\n" not in str(info.value)
    finally:
        server.shutdown()
        silent.close()
    out = tmp_path / "never"
    result = cli("run", "--task", str(mini_task), "--reranker", "some-org/not-downloaded-reranker", "--output",
                 str(out), env={"HF_HUB_OFFLINE": None, "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
                                "HF_HOME": str(tmp_path / "hf")})
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "cannot be reached" in result.stderr and "--model-path" in result.stderr and not out.exists()


def test_a_path_like_reranker_is_a_missing_folder_not_a_hub_id(cli, mini_task, tmp_path, monkeypatch):
    """Issue 26: `--reranker runs/does-not-exist` (with runs/ here), `./x`, `~/x` are local paths: "no such folder",
    never a hub look-up; a plain ORG/NAME stays a hub id."""
    from rrbench.models.factory import looks_like_path

    (tmp_path / "runs").mkdir()
    for name in ("runs/does-not-exist", "./ckpt", "~/nowhere/ckpt", "/abs/ckpt", "a/b/c"):
        result = cli("run", "--task", str(mini_task), "--reranker", name, "--output", str(tmp_path / "o"),
                     cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, (name, result.stderr)
        assert "no such folder" in result.stderr and "hub" not in result.stderr.split("(")[0], result.stderr
    assert not looks_like_path("BAAI/bge-reranker-v2-m3") and not looks_like_path("minilm-l6")
    monkeypatch.chdir(tmp_path / "runs")  # a folder with no runs/ in it (the Quickstart leaves runs/ in a clone)
    assert looks_like_path("runs/x") is False
