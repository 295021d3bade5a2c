"""Candidate generation: corpus scope, pool capping, the candidate cache, fused generators in runs, context windows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rrbench.pipeline.candidates import GeneratorConfig, generate, rankings, recall_at, retrieve
from rrbench.tasks.resolve import candidate_text, load_task_dir
from rrbench.testing.fixtures import MINI_POSTS, MINI_QRELS, MINI_QUERIES, write_task
from rrbench.util.errors import TaskSpecError, UsageError

# The mini task's judgements, re-expressed for corpus scope: queries have no post, qrels name the post.
CORPUS_QUERIES = [{"query_id": q["query_id"], "text": q["text"]} for q in MINI_QUERIES]
POST_OF = {q["query_id"]: q["post_id"] for q in MINI_QUERIES}
CORPUS_QRELS = [{**r, "post_id": POST_OF[r["query_id"]]} for r in MINI_QRELS]


@pytest.fixture
def corpus_task(tmp_path) -> Path:
    return write_task(tmp_path / "mini-open", MINI_POSTS, CORPUS_QUERIES, CORPUS_QRELS, scope="corpus")


def test_corpus_scope_qrels_are_global_and_docnos_name_the_post(corpus_task):
    task = load_task_dir(corpus_task)
    q1 = task.queries["q1"]
    assert len(task.candidates(q1)) == 14  # every sentence of every post
    judged = task.judged(q1)
    assert {task.docno(i) for i in judged} == {"p1:0", "p1:3"}
    q3 = task.queries["q3"]
    assert {task.docno(i): g for i, g in task.judged(q3).items()} == {"p3:1": 1, "p3:3": 2}
    assert task.split_stats()["dev_select"]["sentences"] == 14


def test_corpus_scope_qrels_must_name_a_known_post(tmp_path):
    bad = [{"query_id": "q1", "sentence": 0, "grade": 1}]
    with pytest.raises(TaskSpecError, match="post_id"):
        load_task_dir(write_task(tmp_path / "a", MINI_POSTS, CORPUS_QUERIES, bad, scope="corpus"))
    bad = [{"query_id": "q1", "post_id": "nope", "sentence": 0, "grade": 1}]
    with pytest.raises(TaskSpecError, match="unknown post_id 'nope'"):
        load_task_dir(write_task(tmp_path / "b", MINI_POSTS, CORPUS_QUERIES, bad, scope="corpus"))
    bad = [{"query_id": "q1", "post_id": "p4", "sentence": 2, "grade": 1}]
    with pytest.raises(TaskSpecError, match="past the end of post 'p4'"):
        load_task_dir(write_task(tmp_path / "c", MINI_POSTS, CORPUS_QUERIES, bad, scope="corpus"))


def test_pools_are_capped_at_the_candidates_in_scope(mini_task, corpus_task):
    from rrbench.retrievers.factory import load_retriever
    post = load_task_dir(mini_task)
    queries = list(post.queries.values())
    pools = retrieve(post, queries, load_retriever("bm25"), top_k=400)
    assert [len(ids) for ids, _ in pools] == [len(post.candidates(q)) for q in queries]
    assert all(set(ids) == set(post.candidates(q).tolist()) for (ids, _), q in zip(pools, queries))
    assert [len(ids) for ids, _ in retrieve(post, queries, load_retriever("bm25"), top_k=2)] == [2] * len(queries)

    corpus = load_task_dir(corpus_task)
    queries = list(corpus.queries.values())
    pools = retrieve(corpus, queries, load_retriever("bm25"), top_k=400)
    assert all(len(ids) == 14 and len(set(ids.tolist())) == 14 for ids, _ in pools)
    assert all(np.all(np.diff(scores) <= 0) for _, scores in pools)


def test_recall_at_k_counts_only_has_evidence_queries(corpus_task):
    task = load_task_dir(corpus_task)
    queries = [task.queries[q] for q in ("q1", "q4")]  # q4 has no evidence
    q1_gold = sorted(task.judged(task.queries["q1"]))
    pools = [(np.array([q1_gold[0], 99]), np.array([2.0, 1.0])), (np.array([0]), np.array([1.0]))]
    assert recall_at(task, queries, pools, 1) == pytest.approx(0.5)
    assert recall_at(task, [task.queries["q4"]], pools[1:], 1) is None


def test_candidate_cache_is_reused_without_loading_the_retriever(corpus_task, monkeypatch):
    import rrbench.pipeline.candidates as retrievers  # the module that builds retrievers

    task = load_task_dir(corpus_task)
    queries = sorted(task.queries.values(), key=lambda q: q.query_id)
    first = rankings(task, "dev_select", queries, "bm25", depth=10)
    assert not first.cached

    def refuse(*args, **kwargs):
        raise AssertionError("the retriever was loaded although its candidates are cached")

    monkeypatch.setattr(retrievers, "load_retriever", refuse)
    again = rankings(task, "dev_select", queries, "bm25", depth=10)
    assert again.cached
    shallower = rankings(task, "dev_select", queries, "bm25", depth=3)
    assert shallower.cached
    for (a, sa), (b, sb) in zip(first.pools, again.pools):
        assert a.tolist() == b.tolist() and sa.tolist() == sb.tolist()
    assert [p[0].tolist() for p in shallower.pools] == [p[0][:3].tolist() for p in first.pools]
    # The stored pools hold 10 of the 14 sentences in scope, so a deeper request must recompute.
    with pytest.raises(AssertionError, match="loaded although"):
        rankings(task, "dev_select", queries, "bm25", depth=12)
    # A different context window is a different candidate set.
    with pytest.raises(AssertionError, match="loaded although"):
        rankings(task, "dev_select", queries, "bm25", depth=10, context=1)


def test_whole_scope_pools_serve_any_depth_from_cache(mini_task, monkeypatch):
    import rrbench.pipeline.candidates as retrievers  # the module that builds retrievers

    task = load_task_dir(mini_task)
    queries = sorted(task.queries.values(), key=lambda q: q.query_id)
    rankings(task, "dev_select", queries, "bm25", depth=50)
    monkeypatch.setattr(retrievers, "load_retriever", lambda *a, **k: (_ for _ in ()).throw(AssertionError()))
    assert rankings(task, "dev_select", queries, "bm25", depth=400).cached


def test_context_window_stays_inside_the_post(mini_task):
    task = load_task_dir(mini_task)
    start, _ = task.post_slice("p2")  # p1 ends just before p2 starts
    assert candidate_text(task, start, 0) == MINI_POSTS[1]["sentences"][0]
    assert candidate_text(task, start, 1) == " ".join(MINI_POSTS[1]["sentences"][:2])
    assert candidate_text(task, start + 1, 1) == " ".join(MINI_POSTS[1]["sentences"][:3])
    assert candidate_text(task, start + 1, 5) == " ".join(MINI_POSTS[1]["sentences"])


def test_generator_config_rejects_bad_input():
    with pytest.raises(UsageError, match="need a --fusion"):
        GeneratorConfig(("bm25", "minilm-l6"))
    with pytest.raises(UsageError, match="--context"):
        GeneratorConfig(("bm25",), context=-1)


def test_fused_generator_pools_match_a_hand_fusion(corpus_task):
    from rrbench.retrievers.fusion import rrf

    task = load_task_dir(corpus_task)
    queries = sorted(task.queries.values(), key=lambda q: q.query_id)
    fused = generate(task, "dev_select", queries, GeneratorConfig(("bm25", "minilm-l6"), "rrf", {"k0": 20}), 5)
    a = rankings(task, "dev_select", queries, "bm25", 5)
    b = rankings(task, "dev_select", queries, "minilm-l6", 5)
    assert a.cached and b.cached  # generate() filled the cache
    for (ids, scores), ra, rb in zip(fused.pools, a.pools, b.pools):
        want_ids, want_scores = rrf([ra, rb], 20)
        assert ids.tolist() == want_ids[:5].tolist()
        assert scores == pytest.approx(want_scores[:5])
    assert fused.describe["id"] == "rrf(bm25+minilm-l6)"
    assert fused.describe["options"]["fusion"]["options"] == {"k0": 20}
    assert [r["id"] for r in fused.describe["options"]["retrievers"]] == ["bm25", "minilm-l6"]


def _run(tmp_path, task_dir, name, **kwargs):
    from rrbench.pipeline.runner import RunConfig, execute

    return execute(RunConfig(task=str(task_dir), output=str(tmp_path / name), show_progress=False, **kwargs))


def test_runs_record_the_fused_generator_in_claims_and_hash(tmp_path, corpus_task):
    base = _run(tmp_path, corpus_task, "a", retriever=("bm25", "minilm-l6"), fusion="rrf", rrf_k=60,
                top_k_retriever=5)
    k20 = _run(tmp_path, corpus_task, "b", retriever=("bm25", "minilm-l6"), fusion="rrf", rrf_k=20,
               top_k_retriever=5)
    weighted = _run(tmp_path, corpus_task, "c", retriever=("bm25", "minilm-l6"), fusion="weighted", alpha=0.3,
                    norm="zscore", top_k_retriever=5)
    alone = _run(tmp_path, corpus_task, "d", retriever="bm25", top_k_retriever=5)
    hashes = {r["config_hash"] for r in (base, k20, weighted, alone)}
    assert len(hashes) == 4
    generator = weighted["config"]["generator"]
    assert [r["id"] for r in generator["retrievers"]] == ["bm25", "minilm-l6"]
    assert generator["fusion"]["id"] == "weighted" and generator["fusion"]["options"] == {"alpha": 0.3,
                                                                                          "norm": "zscore"}
    assert weighted["system"].startswith("weighted(bm25+minilm-l6)")
    assert "--fusion weighted --alpha 0.3 --norm zscore" in weighted["provenance"]["command"]
    # qrels.trec of a corpus-scope run names each judged sentence's post.
    qrels = (tmp_path / "a" / "qrels.trec").read_text().split("\n")
    assert "q1 0 p1:3 2" in qrels and "q3 0 p3:1 1" in qrels
    run_docnos = {line.split()[2] for line in (tmp_path / "a" / "run.trec").read_text().splitlines()}
    assert run_docnos <= {f"{p['post_id']}:{i}" for p in MINI_POSTS for i in range(len(p["sentences"]))}


def test_context_is_part_of_the_config_hash(tmp_path, mini_task):
    plain = _run(tmp_path, mini_task, "a", retriever="bm25")
    again = _run(tmp_path, mini_task, "b", retriever="bm25")
    wide = _run(tmp_path, mini_task, "c", retriever="bm25", context=1)
    assert plain["config_hash"] == again["config_hash"]
    assert wide["config_hash"] != plain["config_hash"]
    assert wide["config"]["generator"]["context"] == 1 and "ctx1" in wide["system"]


def test_candidates_command_table_agrees_with_its_run_files(tmp_path, corpus_task, cli):
    out = tmp_path / "runs"
    result = cli("candidates", "--task", str(corpus_task), "--retriever", "bm25", "--retriever", "minilm-l6",
                 "--fusion", "rrf", "--fusion", "weighted", "--norm", "rank", "--k", "1,3", "--json",
                 "--output", str(out))
    assert result.returncode == 0, result.stderr
    table = json.loads(result.stdout)
    labels = [row["generator"] for row in table["rows"]]
    assert labels == ["bm25", "minilm-l6", "rrf(bm25+minilm-l6)", "weighted(bm25+minilm-l6)"]
    assert table["has_evidence"] == 4 and table["queries"] == 6
    # Recompute R@3 of each row from the TREC file it wrote (deepest K = 3) and the task's judgements.
    task = load_task_dir(corpus_task)
    for row, path in zip(table["rows"], table["runs"]):
        ranked: dict[str, list[str]] = {}
        for line in Path(path).read_text().splitlines():
            qid, _, docno, *_ = line.split()
            ranked.setdefault(qid, []).append(docno)
        values = []
        for q in task.queries.values():
            gold = {task.docno(i) for i, g in task.judged(q).items() if g >= 1}
            if gold:
                values.append(len(gold & set(ranked[q.query_id][:3])) / len(gold))
        assert row["R@3"] == pytest.approx(np.mean(values))
    again = cli("candidates", "--task", str(corpus_task), "--retriever", "bm25", "--retriever", "minilm-l6",
                "--fusion", "rrf", "--k", "1,3", "--json")
    assert all(row["cached"] for row in json.loads(again.stdout)["rows"])


@pytest.mark.parametrize("args, fragment", [
    (("--fusion", "rff"), "Did you mean: rrf"),
    (("--fusion", "rrf", "--rrf-k", "0"), "k0"),
    (("--fusion", "weighted", "--alpha", "2"), "'alpha' must be within [0, 1]"),
    (("--k", "ten"), "--k must be"),
])
def test_candidates_command_bad_input_is_one_line_exit_2(corpus_task, cli, args, fragment):
    result = cli("candidates", "--task", str(corpus_task), "--retriever", "bm25", "--retriever", "minilm-l6", *args)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_fusion_needs_two_retrievers(corpus_task, cli):
    result = cli("candidates", "--task", str(corpus_task), "--retriever", "bm25", "--fusion", "rrf")
    assert result.returncode == 2 and "at least two --retriever" in result.stderr


def test_a_rerank_run_starts_from_candidates_cached_by_the_candidates_command(tmp_path, corpus_task, cli,
                                                                              tiny_model):
    made = cli("candidates", "--task", str(corpus_task), "--retriever", "bm25", "--retriever", "minilm-l6",
               "--fusion", "rrf", "--k", "2,4")
    assert made.returncode == 0, made.stderr
    run = cli("run", "--task", str(corpus_task), "--retriever", "bm25", "--retriever", "minilm-l6", "--fusion", "rrf",
              "--top-k-retriever", "4", "--top-k-rerank", "3", "--reranker", "cross-encoder", "--model-path",
              str(tiny_model), "--output", str(tmp_path / "run"), "--quiet")
    assert run.returncode == 0, run.stderr
    provenance = json.loads((tmp_path / "run" / "results.json").read_text())["provenance"]
    assert provenance["candidate_cache"] == {"bm25": {"cached": True, "seconds": 0.0},
                                             "minilm-l6": {"cached": True, "seconds": 0.0}}
    assert provenance["pairs_scored"] == 3 * 6
