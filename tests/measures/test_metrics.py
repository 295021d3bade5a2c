"""Metrics agree with pytrec_eval (trec_eval) on the TREC files rrbench writes, ties and no-evidence included."""

from __future__ import annotations

import numpy as np
import pytest
import pytrec_eval

from rrbench.measures.metrics import RankedQuery, evaluate, evaluate_arrays, ndcg_at_k
from rrbench.measures.trec import final_ranking, qrels_lines, read_run, run_lines, strictly_decreasing


def _parse_run(lines):
    run = {}
    for line in lines:
        q, _, d, _, s, _ = line.split()
        run.setdefault(q, {})[d] = float(s)
    return run


def _parse_qrels(lines):
    qrels = {}
    for line in lines:
        q, _, d, g = line.split()
        qrels.setdefault(q, {})[d] = int(g)
    return qrels


def _random_case(rng, n_queries=60):
    """Queries with 3-40 candidates, graded labels 0-3, ~30% no-evidence queries, heavily tied scores."""
    ranked_queries, run_text, qrels_text = [], [], []
    for qi in range(n_queries):
        qid = f"q{qi}"
        n = int(rng.integers(3, 40))
        docs = np.array([f"p{qi}:{i}" for i in range(n)])
        grades = np.zeros(n, dtype=int)
        if rng.random() > 0.3:
            rel = rng.choice(n, size=int(rng.integers(1, min(n, 5) + 1)), replace=False)
            grades[rel] = rng.integers(1, 4, size=len(rel))
        retriever_scores = np.round(rng.normal(size=n), 1)  # ties on purpose
        pool_order = np.lexsort((np.arange(n), -retriever_scores))
        pool = np.arange(n)[pool_order]
        depth = int(rng.integers(0, n + 1))
        rerank = np.round(rng.normal(size=depth), 1) if depth else None
        ranked, scores = final_ranking(pool, rerank, retriever_scores[pool_order])
        assert np.all(np.diff(scores) < 0)
        run_text += run_lines(qid, docs[ranked], scores, "test")
        qrels_text += qrels_lines(qid, {docs[i]: int(grades[i]) for i in range(n) if grades[i] > 0})
        decision = rerank if rerank is not None else retriever_scores[pool_order]
        ranked_queries.append(RankedQuery(qid, grades[ranked].astype(float), grades[grades > 0].astype(float),
                                          decision))
    return ranked_queries, run_text, qrels_text


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_with_pytrec_eval(seed):
    rng = np.random.default_rng(seed)
    queries, run_text, qrels_text = _random_case(rng)
    pool_k = 25
    metrics, per_query = evaluate(queries, pool_k=pool_k, threshold=0.3)
    qrels = _parse_qrels(qrels_text)
    run = _parse_run(run_text)
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", f"recall.10,{pool_k}"})
    reference = evaluator.evaluate(run)
    # RR@10: trec_eval's recip_rank on the run cut to its top 10 (by the same order trec_eval reads).
    top10 = {q: dict(sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))[:10]) for q, d in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    with_evidence = [q.query_id for q in queries if q.has_evidence]
    assert set(reference) == set(with_evidence)  # trec_eval skips no-evidence queries, as we do
    for qid in with_evidence:
        assert per_query[qid]["nDCG@10"] == pytest.approx(reference[qid]["ndcg_cut_10"], abs=1e-9)
        assert per_query[qid]["R@10"] == pytest.approx(reference[qid]["recall_10"], abs=1e-9)
        assert per_query[qid][f"R@{pool_k}"] == pytest.approx(reference[qid][f"recall_{pool_k}"], abs=1e-9)
        assert per_query[qid]["RR@10"] == pytest.approx(rr[qid]["recip_rank"], abs=1e-9)
    assert metrics["nDCG@10"] == pytest.approx(np.mean([reference[q]["ndcg_cut_10"] for q in with_evidence]), abs=1e-9)
    assert metrics["RR@10"] == pytest.approx(np.mean([rr[q]["recip_rank"] for q in with_evidence]), abs=1e-9)


def test_false_evidence_rate_counts_no_evidence_queries_only():
    empty = np.array([])
    queries = [
        RankedQuery("a", np.array([1.0, 0.0]), np.array([1.0]), np.array([2.0, -1.0])),
        RankedQuery("b", np.array([0.0, 0.0]), empty, np.array([0.4, 0.1])),   # below threshold
        RankedQuery("c", np.array([0.0, 0.0]), empty, np.array([0.5, -3.0])),  # reaches it (>=)
        RankedQuery("d", np.array([0.0]), empty, np.array([-0.2])),
    ]
    metrics, per_query = evaluate(queries, pool_k=2, threshold=0.5)
    assert metrics["false_evidence_rate"] == pytest.approx(1 / 3)
    assert per_query["c"]["false_evidence"] == 1.0 and per_query["b"]["false_evidence"] == 0.0
    assert "false_evidence" not in per_query["a"] and per_query["a"]["nDCG@10"] == 1.0
    assert metrics["queries_has_evidence"] == 1 and metrics["queries_no_evidence"] == 3
    no_threshold, _ = evaluate(queries, pool_k=2, threshold=None)
    assert no_threshold["false_evidence_rate"] is None



def test_summary_metrics_without_per_query_rows_equal_the_full_evaluation():
    """Sweeps ask for the summary only (``per_query=False``): same numbers, no rows."""
    rng = np.random.default_rng(3)
    ranked = rng.integers(0, 3, size=(12, 15)).astype(float)
    ideal = np.zeros((12, 4))
    ideal[:8, :2] = rng.integers(1, 3, size=(8, 2))
    answered = rng.random(12) < 0.5
    ids = [f"q{i}" for i in range(12)]
    full, rows = evaluate_arrays(ids, ranked, ideal, answered, pool_k=15)
    summary, none = evaluate_arrays(ids, ranked, ideal, answered, pool_k=15, per_query=False)
    assert summary == full and rows and none == {}

def test_ndcg_handcomputed():
    ranked = np.array([[0, 2, 1, 0]], dtype=float)
    ideal = np.array([[1, 2, 0, 0]], dtype=float)
    dcg = 2 / np.log2(3) + 1 / np.log2(4)
    idcg = 2 / np.log2(2) + 1 / np.log2(3)
    assert ndcg_at_k(ranked, ideal, 10)[0] == pytest.approx(dcg / idcg)


def test_strictly_decreasing_and_tie_break():
    scores = strictly_decreasing(np.array([3.0, 3.0, 3.0, 1.0, 1.0]))
    assert np.all(np.diff(scores) < 0) and scores[0] == 3.0
    pool = np.array([7, 3, 5])
    ranked, _ = final_ranking(pool, np.array([0.2, 0.9, 0.2]), np.array([5.0, 4.0, 3.0]))
    assert ranked.tolist() == [3, 7, 5]  # ties keep the retriever's order


def test_read_run_orders_like_trec_eval(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text("q1 Q0 d1 1 1.0 x\nq1 Q0 d2 2 1.0 x\nq1 Q0 d3 3 2.0 x\n")
    assert [d for d, _ in read_run(str(path))["q1"]] == ["d3", "d2", "d1"]
