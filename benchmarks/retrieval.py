"""First-stage benchmark on the corpus-wide task: indexing and query throughput, and peak memory.

Compares, in one run and on the same machine, so the ratios are meaningful:
- ``bm25`` (bm25s, in process) against ``pyserini-bm25`` (Lucene through the JVM; needs the rrbench-pyserini plugin);
- exact (``Flat``) against approximate (``HNSW32``) faiss search over all-MiniLM-L6-v2 vectors, with the share of
  the exact top-K that the approximate index finds.

Each measurement runs in its own child process, so its peak resident memory (``ru_maxrss``) is its own. Query
throughput is measured one query at a time (as ``rrbench run`` issues them). Dense search timings use pre-encoded
query vectors, so they measure the index, not the encoder; encoding throughput is reported separately, and the
document embeddings come from rrbench's embedding cache when present (say so in the output: ``doc_encode_cached``).

Usage: python benchmarks/retrieval.py [--task scifact-evidence-open] [--split dev_select] [--k 100] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEASURES = ("bm25", "pyserini-bm25", "faiss-flat", "faiss-hnsw")


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _load(task_name: str, split: str):
    from rrbench.tasks.resolve import candidate_texts
    from rrbench.tasks.resolve import get_task
    task = get_task(task_name)
    queries = sorted(task.split_queries(split), key=lambda q: q.query_id)
    return task, candidate_texts(task, range(len(task.sentences))), [q.text for q in queries]


def measure_sparse(name: str, task_name: str, split: str, k: int) -> dict:
    from rrbench.retrievers.factory import load_retriever
    _, texts, queries = _load(task_name, split)
    started = time.perf_counter()
    retriever = load_retriever(name)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    retriever.index(texts)
    index_s = time.perf_counter() - started
    started = time.perf_counter()
    for query in queries:
        retriever.search(query, k)
    search_s = time.perf_counter() - started
    return {"measure": name, "documents": len(texts), "queries": len(queries), "load_s": round(load_s, 2),
            "index_s": round(index_s, 2), "docs_per_s": round(len(texts) / index_s, 1),
            "queries_per_s": round(len(queries) / search_s, 1), "peak_rss_mb": _peak_mb()}


def measure_faiss(kind: str, task_name: str, split: str, k: int) -> dict:
    import faiss
    import numpy as np

    from rrbench.retrievers.factory import load_retriever
    _, texts, queries = _load(task_name, split)
    retriever = load_retriever("minilm-l6")
    started = time.perf_counter()
    retriever.index(texts)  # embeddings: from the cache when an earlier run stored them
    embed_s = time.perf_counter() - started
    vectors = retriever._embeddings
    started = time.perf_counter()
    query_vectors = np.stack([retriever.encode_query(q) for q in queries])
    encode_qps = len(queries) / (time.perf_counter() - started)

    def build(spec: str):
        index = faiss.index_factory(vectors.shape[1], spec, faiss.METRIC_INNER_PRODUCT)
        if spec.startswith("HNSW"):
            index.hnsw.efConstruction = 40
        index.add(vectors)
        if spec.startswith("HNSW"):
            index.hnsw.efSearch = 128
        return index

    def search_all(index) -> tuple[float, np.ndarray]:
        started = time.perf_counter()
        found = [index.search(query_vectors[i:i + 1], k)[1][0] for i in range(len(queries))]
        return time.perf_counter() - started, np.stack(found)

    spec = "Flat" if kind == "faiss-flat" else "HNSW32"
    started = time.perf_counter()
    index = build(spec)
    build_s = time.perf_counter() - started
    search_s, found = search_all(index)
    out = {"measure": kind, "index": spec, "documents": len(texts), "queries": len(queries),
           "doc_encode_s": round(embed_s, 2), "doc_encode_cached": bool(retriever.cache_hit),
           "query_encode_per_s": round(encode_qps, 1), "index_s": round(build_s, 3),
           "queries_per_s": round(len(queries) / search_s, 1), "peak_rss_mb": _peak_mb()}
    if spec != "Flat":
        _, exact = search_all(build("Flat"))
        overlap = [len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(found, exact)]
        out[f"recall_vs_exact@{k}"] = round(float(np.mean(overlap)), 4)
    return out


def child(measure: str, task: str, split: str, k: int) -> dict:
    if measure in ("bm25", "pyserini-bm25"):
        return measure_sparse(measure, task, split, k)
    return measure_faiss(measure, task, split, k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="scifact-evidence-open")
    parser.add_argument("--split", default="dev_select")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--only", choices=MEASURES, help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--json", default=None, help="Also write the results to this file.")
    args = parser.parse_args()
    if args.only:
        print(json.dumps(child(args.only, args.task, args.split, args.k)))
        return

    results = {}
    for measure in MEASURES:
        proc = subprocess.run([sys.executable, __file__, "--only", measure, "--task", args.task, "--split",
                               args.split, "--k", str(args.k)], capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            print(f"{measure}: failed: {tail}", file=sys.stderr)
            continue
        results[measure] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(json.dumps(results[measure]))
    ratios = {}
    if "bm25" in results and "pyserini-bm25" in results:
        a, b = results["bm25"], results["pyserini-bm25"]
        ratios["bm25s_vs_pyserini_index_speed"] = round(b["index_s"] / a["index_s"], 2)
        ratios["bm25s_vs_pyserini_query_speed"] = round(a["queries_per_s"] / b["queries_per_s"], 2)
    if "faiss-flat" in results and "faiss-hnsw" in results:
        a, b = results["faiss-flat"], results["faiss-hnsw"]
        ratios["hnsw_vs_flat_query_speed"] = round(b["queries_per_s"] / a["queries_per_s"], 2)
    print(json.dumps({"ratios": ratios}))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "ratios": ratios}, indent=2)
                                   + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
