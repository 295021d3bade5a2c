"""Cross-encoder scoring speed against the peers a user would pick, side by side in one run, on one set of weights.

Pairs: every (query, sentence of its post) pair of a task split (default ``scifact-evidence`` ``dev_select``).
Model: ``--model-path`` of a cross-encoder with a *trained* [CLS] head (``rrbench train --head cls``): fidelity on an
untrained head is meaningless (its scores sit 0.001 apart and rounding decides their order).

Rows (each scores every pair once, after a warm-up on 64 pairs; same weights, same max length):

- ``sequential fp32``: a per-query loop of ``CrossEncoder.predict`` (the reference for speed and fidelity);
- ``CrossEncoder.predict`` flat: one call over all pairs, at fp32 and at the engine's ``--dtype auto`` dtype;
- ``FlagReranker.compute_score`` (FlagEmbedding; it sorts pairs by length itself);
- plain ONNX Runtime and OpenVINO sessions on the exported graph, run as their docs show (tokenise a batch with
  padding, ``session.run`` / ``compiled_model(inputs)``, default session options), batches in input order;
- rrbench's engine on each runtime (torch, onnx, openvino) and dtype (fp32, int8, bf16 where native).

Per row: pairs/s, the ratio to the sequential loop, the share of the machine's compute ceiling at the row's
precision (measured matmul FLOP/s over the model's FLOPs per pair on unpadded tokens), the share of queries whose
top-10 order is unchanged and the nDCG@10 difference against the sequential fp32 run (all sentences of each query's
post ranked by score). Usage::

    python benchmarks/rerank_peers.py --model-path runs/cls-small [--limit-queries N] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rerank_throughput import (flops_per_pair, int8_linear_flops, load_pairs, matmul_flops,  # noqa: E402
                               split_scores, top10_unchanged)


def ndcg10(task, queries, groups_scores) -> float:
    """Mean nDCG@10 over has-evidence queries, ranking each query's post sentences by score (ties: position)."""
    from rrbench.measures.metrics import RankedQuery, evaluate

    ranked = []
    for query, scores in zip(queries, groups_scores):
        ids = task.candidates(query)
        order = np.argsort(-scores, kind="stable")
        judged = task.qrels.get(query.query_id, {})
        ranked.append(RankedQuery(query.query_id, task.relevance(query, ids[order]),
                                  np.asarray(list(judged.values()), dtype=np.float64)))
    return float(evaluate(ranked)[0]["nDCG@10"])


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def batches(pairs, size):
    for start in range(0, len(pairs), size):
        yield pairs[start:start + size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-path", required=True, help="a trained --head cls cross-encoder checkpoint")
    parser.add_argument("--task", default="scifact-evidence")
    parser.add_argument("--split", default="dev_select")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--limit-queries", type=int, default=None)
    parser.add_argument("--peak-seconds", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for every row (torch, ONNX Runtime, OpenVINO); default: torch's default")
    parser.add_argument("--skip", default="", help="comma-separated row names to leave out (e.g. flag,openvino-int8)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    import torch
    from sentence_transformers import CrossEncoder

    if args.threads:
        torch.set_num_threads(args.threads)  # rrbench's ORT/OpenVINO sessions follow torch's thread count

    from rrbench.models.factory import load_reranker
    from rrbench.models.loading import cpu_flags, resolve_dtype
    from rrbench.tasks.resolve import get_task
    task = get_task(args.task)
    queries = [q for q in sorted(task.split_queries(args.split), key=lambda q: q.query_id)[:args.limit_queries]
               if len(task.candidates(q))]
    groups = load_pairs(args.task, args.split, args.limit_queries)
    assert len(groups) == len(queries)
    pairs = [[q, d] for q, docs in groups for d in docs]
    qs, ds = [p[0] for p in pairs], [p[1] for p in pairs]
    n = len(pairs)
    auto = resolve_dtype("auto", "cpu")
    threads = torch.get_num_threads()
    print(f"{len(groups)} queries, {n} pairs; torch threads {threads}; cpus {os.cpu_count()}; "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}; --dtype auto -> {auto}", flush=True)

    base = CrossEncoder(args.model_path, device="cpu", max_length=args.max_length, activation_fn=torch.nn.Identity())
    base.model.eval()
    rows: list[dict] = []
    reference: dict = {}

    def add(name, kind, dtype, fn, warm):
        if name in skip:
            return
        warm()
        flat, seconds = timed(fn)
        flat = np.asarray(flat, dtype=np.float64).reshape(-1)
        per_query = split_scores(flat, groups)
        if not reference:
            reference.update(scores=per_query, flat=flat, ndcg=ndcg10(task, queries, per_query), rate=n / seconds)
        row = {"row": name, "kind": kind, "dtype": dtype, "pairs_per_s": n / seconds,
               "vs_sequential": n / seconds / reference["rate"],
               "top10_unchanged": top10_unchanged(reference["scores"], per_query),
               "ndcg10": ndcg10(task, queries, per_query),
               "max_abs_diff": float(np.abs(flat - reference["flat"]).max())}
        row["ndcg10_diff"] = row["ndcg10"] - reference["ndcg"]
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)

    def predict_loop(model):
        return np.concatenate([np.asarray(model.predict([[q, d] for d in docs], batch_size=32,
                                                        show_progress_bar=False)).reshape(-1) for q, docs in groups])

    warm_predict = lambda m: (lambda: m.predict(pairs[:64], batch_size=32, show_progress_bar=False))  # noqa: E731
    add("sequential fp32", "peer", "float32", lambda: predict_loop(base), warm_predict(base))
    add("CrossEncoder.predict flat fp32", "peer", "float32",
        lambda: base.predict(pairs, batch_size=args.batch_size, show_progress_bar=False), warm_predict(base))
    if auto != "float32":
        low = CrossEncoder(args.model_path, device="cpu", max_length=args.max_length,
                           activation_fn=torch.nn.Identity())
        low.model.to(getattr(torch, auto)).eval()
        add(f"CrossEncoder.predict flat {auto}", "peer", auto,
            lambda: low.predict(pairs, batch_size=args.batch_size, show_progress_bar=False), warm_predict(low))

    if "flag" not in skip:
        from FlagEmbedding import FlagReranker

        flag = FlagReranker(args.model_path, use_fp16=False, devices=["cpu"], batch_size=args.batch_size,
                            max_length=args.max_length)
        add("FlagReranker.compute_score", "peer", "float32",
            lambda: flag.compute_score(pairs, batch_size=args.batch_size, max_length=args.max_length),
            lambda: flag.compute_score(pairs[:64], batch_size=args.batch_size, max_length=args.max_length))

    tokenizer = base.processor

    def tokenised(batch):
        return tokenizer([p[0] for p in batch], [p[1] for p in batch], padding=True, truncation=True,
                         max_length=args.max_length, return_tensors="np")

    engines: dict[str, object] = {}

    def engine(runtime, dtype):
        reranker = load_reranker(args.model_path, device="cpu", batch_size=args.batch_size,
                                 max_length=args.max_length, runtime=runtime, dtype=dtype)
        engines[f"{runtime}-{dtype}"] = reranker
        return reranker

    if "onnx" not in skip:  # the peer's own best practice on the exported graph (rrbench's export, built once)
        import onnxruntime as ort

        onnx_file = engine("onnx", "float32").export.directory / "model.onnx"
        options = ort.SessionOptions()
        if args.threads:
            options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}

        def run_ort(subset):
            return np.concatenate([session.run(None, {k: v.astype(np.int64) for k, v in tokenised(b).items()
                                                      if k in names})[0] for b in batches(subset, args.batch_size)])

        add("plain ONNX Runtime session", "peer", "float32", lambda: run_ort(pairs), lambda: run_ort(pairs[:64]))
    if "openvino" not in skip:
        import openvino as ov

        xml = engine("openvino", "float32").export.directory / "model.xml"
        compiled = ov.Core().compile_model(str(xml), "CPU",
                                           {"INFERENCE_NUM_THREADS": args.threads} if args.threads else {})
        names = {p.get_any_name() for p in compiled.inputs}

        def run_ov(subset):
            return np.concatenate([compiled({k: v.astype(np.int64) for k, v in tokenised(b).items()
                                             if k in names})[0] for b in batches(subset, args.batch_size)])

        add("plain OpenVINO compiled model", "peer", "float32 (OpenVINO's default precision hint)",
            lambda: run_ov(pairs), lambda: run_ov(pairs[:64]))

    variants = [("torch", "float32"), ("torch", "int8"), ("onnx", "float32"), ("onnx", "int8"),
                ("openvino", "float32"), ("openvino", "int8")]
    if auto == "bfloat16":
        variants += [("torch", "bfloat16"), ("openvino", "bfloat16")]
    for runtime, dtype in variants:
        name = f"rrbench engine {runtime} {dtype}"
        if f"{runtime}-{dtype}" in skip or runtime in skip and runtime != "torch":
            continue
        reranker = engines.get(f"{runtime}-{dtype}") or engine(runtime, dtype)
        add(name, "rrbench", dtype, lambda r=reranker: r.score_pairs(qs, ds),
            lambda r=reranker: r.score_pairs(qs[:64], ds[:64]))

    counts = np.array([len(ids) for ids in tokenizer(qs, ds, truncation=True, max_length=args.max_length)
                       ["input_ids"]])
    per_pair = flops_per_pair(base.model, counts)
    peaks = {"float32": matmul_flops(torch.float32, args.peak_seconds), "int8": int8_linear_flops(args.peak_seconds)}
    if auto == "bfloat16":
        peaks["bfloat16"] = matmul_flops(torch.bfloat16, args.peak_seconds)
    for row in rows:
        peak = peaks.get(row["dtype"].split(" ")[0])
        row["ceiling_share"] = row["pairs_per_s"] / (peak / per_pair) if peak else None
    report = {"task": args.task, "split": args.split, "model": str(Path(args.model_path).resolve()),
              "queries": len(groups), "pairs": n, "torch_threads": threads, "cpus": os.cpu_count(),
              "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "cpu_bf16_flags": sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "avx512f", "avx512_vnni",
                                                      "avx_vnni", "amx_int8"}),
              "dtype_auto": auto, "batch_size": args.batch_size, "max_length": args.max_length,
              "mean_tokens_per_pair": float(counts.mean()), "gflops_per_pair": per_pair / 1e9,
              "matmul_gflops": {k: round(v / 1e9, 1) for k, v in peaks.items()},
              "ndcg10_sequential_fp32": reference["ndcg"],
              "engine_stats": {k: e.engine.stats.as_dict() for k, e in engines.items()},
              "rows": rows}
    print(table(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)


def table(report: dict) -> str:
    """The Markdown table benchmarks/README.md holds."""
    lines = ["| row | dtype | pairs/s | vs sequential | share of ceiling | top-10 unchanged | nDCG@10 diff |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in report["rows"]:
        share = f"{r['ceiling_share']:.2f}" if r.get("ceiling_share") else "-"
        lines.append(f"| {r['row']} | {r['dtype']} | {r['pairs_per_s']:.1f} | {r['vs_sequential']:.2f}x | {share} | "
                     f"{100 * r['top10_unchanged']:.0f}% | {r['ndcg10_diff']:+.4f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
