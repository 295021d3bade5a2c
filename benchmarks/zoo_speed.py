"""Speed and memory of every zoo reranker at its real size, on architecture replicas (random weights: speed only).

One run, one table: for each zoo model, its parameter count (counted on the meta device), rrbench's memory estimate,
the measured peak memory, and pairs/s for

- the sequential loop (the peer's call, one query at a time, fp32);
- the peer's flat call over all pairs: ``CrossEncoder.predict`` for cross-encoders, ``FlagReranker.compute_score``
  where the card documents it (bge-reranker-v2-m3), the model card's transformers yes/no recipe for the generative
  rerankers (left padding, ``model(**inputs).logits[:, -1, :]``, the two answer columns), the card's own
  ``rerank()`` call for jina-reranker-v3 (which is what rrbench's listwise backend calls);
- rrbench's engine on each runtime that supports the architecture (torch; ONNX Runtime and OpenVINO for
  cross-encoders);

with the engine's ratio to the best peer and its share of the fp32 compute ceiling (measured matmul FLOP/s over the
model's FLOPs per pair on unpadded tokens). Every row scores the same scifact-evidence dev_select pairs (queries in
id order; real lengths through the real tokenizer for MiniLM, the length tokenizer elsewhere). Each model runs in
its own process, so its peak RSS is its own.

Usage::

    python benchmarks/zoo_speed.py [--models a,b] [--json F] [--threads N]
    python benchmarks/zoo_speed.py --worker MODEL ...   # one model, one JSON line (what the driver runs)
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rerank_throughput import matmul_flops

#: model -> pairs scored per row: about a minute per row or more on this shared 2-core CPU (64+ pairs where fast)
PLAN: dict[str, int] = {
    "minilm-l12": 128, "gte-modernbert": 48, "mxbai-base-v1": 16, "jina-v2": 16, "mxbai-large-v1": 12,
    "bge-v2-m3": 12, "qwen3-0.6b": 4, "mxbai-base-v2": 4, "jina-v3": 9, "mxbai-large-v2": 1, "qwen3-4b": 1,
    "qwen3-8b": 0, "bge-gemma2-lightweight": 0,
}
#: models whose peer rows are left out (each costs minutes per pair here); their engine row and memory are measured
ENGINE_ONLY = ("qwen3-4b",)
#: ONNX Runtime / OpenVINO exports are built for cross-encoders up to this size (an export of a large model costs
#: minutes and another copy of the weights; the run is kept within about an hour on a shared 2-core machine)
EXPORT_MAX_PARAMS = 300_000_000
#: models measured at fp32 only when the memory plan lets them load; estimates otherwise
LARGE = ("qwen3-4b", "qwen3-8b", "bge-gemma2-lightweight")
CARD_BATCH = 8  # the yes/no recipe materialises batch x length x vocabulary logits: a small batch keeps it in memory


def timed(fn):
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def rss_mb() -> float:
    from rrbench.models.speed import current_rss_bytes

    return current_rss_bytes() / 2 ** 20


def peak_mb() -> float:
    from rrbench.models.speed import peak_rss_bytes

    return peak_rss_bytes() / 2 ** 20


def flops_per_pair(model, tokens: np.ndarray, vocab: int) -> float:
    """2 x Linear weights per token (the vocabulary-sized output layer excluded: scoring reads two of its rows) plus
    the attention products (4 x layers x T^2 x hidden), mean over pairs."""
    import torch

    cfg = model.config
    linear = sum(m.weight.numel() for m in model.modules()
                 if isinstance(m, torch.nn.Linear) and m.weight.shape[0] != vocab)
    t = tokens.astype(np.float64)
    return float(np.mean(2 * linear * t + 4 * cfg.num_hidden_layers * t ** 2 * cfg.hidden_size))


# -- the worker: one model ---------------------------------------------------------------------------------------------
def worker(args) -> dict:
    import torch

    from rrbench.components.registry import get_registry
    from rrbench.models.architectures import ARCHITECTURES
    from rrbench.models.memory import MemoryPlanError, available_bytes, count_on_meta, memory_model
    from rrbench.models.replica import count_parameters, load_replica, model_config, replica_folder, replica_info
    from rrbench.models.speed import PairSample, score_sample, task_pairs

    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.worker
    arch = ARCHITECTURES[name]
    spec = get_registry().get("rerankers", name).spec
    n = 0 if PLAN[name] == 0 else (args.pairs or PLAN[name])  # estimate-only models are never loaded
    sample = task_pairs(args.task, args.split, max(n, 1))
    texts = sample.texts()
    folder = replica_folder(name, texts=texts)
    info = replica_info(folder)
    out: dict = {"model": name, "class": arch["class"], "stand_in": arch.get("stand_in"), "backend": spec.backend,
                 "params": count_parameters(arch), "params_card": arch["params"], "tokens": info["tokens"],
                 "rows": [], "notes": []}
    cfg, cls = model_config(arch)
    params, linear = count_on_meta(cfg, cls)
    est = memory_model(cfg, params, linear, "float32", name)
    est16 = dataclasses.replace(est, dtype="bfloat16")
    out["estimate_fp32_gib"] = round(est.peak_bytes(args.batch_size, 160) / 2 ** 30, 2)
    out["estimate_bf16_gib"] = round(est16.peak_bytes(args.batch_size, 160) / 2 ** 30, 2)
    out["available_gib"] = round((available_bytes("cpu") or 0) / 2 ** 30, 1)
    if n == 0:
        out["notes"].append(why_not(name, out))
        return out
    qs, ds = sample.queries, sample.documents
    import sentence_transformers  # noqa: F401 - imported before the baseline, so RSS increases are the model's

    base_rss = rss_mb()
    out["baseline_rss_mb"] = round(base_rss, 0)
    common = {"device": "cpu", "dtype": "float32", "batch_size": args.batch_size}

    def add(row, kind, fn, warm=None, tokens=None):
        if warm is not None:
            warm()
        scores, seconds = timed(fn)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        assert scores.shape[0] == len(qs), (row, scores.shape)
        entry = {"row": row, "kind": kind, "pairs": len(qs), "seconds": round(seconds, 2),
                 "pairs_per_s": len(qs) / seconds, "finite": bool(np.isfinite(scores).all())}
        out["rows"].append(entry)
        print(json.dumps({"model": name, **entry}), file=sys.stderr, flush=True)

    # 1. rrbench's engine, torch (first, so that the peak RSS below is the engine's own)
    try:
        reranker = load_replica(name, texts=texts, **common,
                                **({"group_size": 32} if spec.backend == "listwise" else {}))
    except MemoryPlanError as exc:
        out["notes"].append(f"refused by the memory plan: {exc}")
        return out
    load_rss = rss_mb()
    def warm():
        return score_sample(reranker, PairSample([(qs[0], ds[:1])]))

    add("rrbench engine, torch" if spec.backend != "listwise" else "rrbench listwise backend (card's rerank(), "
        "group 32)", "rrbench", lambda: score_sample(reranker, sample), warm)
    out["peak_rss_mb"] = round(peak_mb(), 0)
    out["rss_increase_mb"] = round(peak_mb() - base_rss, 0)
    out["load_increase_mb"] = round(load_rss - base_rss, 0)
    stats = getattr(getattr(reranker, "engine", None), "stats", None)
    feats = None
    if hasattr(reranker, "_encode"):
        q_in = reranker._queries(qs) if hasattr(reranker, "_queries") else qs
        feats = reranker._encode(q_in, ds)
        counts = np.array([len(f["input_ids"]) for f in feats])
        out["tokens_per_pair"] = round(float(counts.mean()), 1)
        longest = int(counts.max())
        acts = [est.activation_bytes(min(args.batch_size, len(counts) - i), int(c))
                for i, c in enumerate(sorted(counts, reverse=True)) if i % args.batch_size == 0]
        out["estimate_run_mb"] = round((est.weight_bytes + max(acts)) / 2 ** 20, 0)
        hf = reranker.model.model if spec.backend == "cross-encoder" else reranker.model
        out["gflops_per_pair"] = flops_per_pair(hf, counts, int(arch["config"]["vocab_size"])) / 1e9
        out["longest"] = longest
    else:
        out["tokens_per_pair"] = None
    if stats is not None:
        out["engine"] = stats.as_dict()

    # 2. peers
    if name in ENGINE_ONLY:
        out["notes"].append("peer rows left out: minutes per pair on this shared CPU")
    elif spec.backend == "cross-encoder":
        ce = reranker.model  # the same sentence-transformers CrossEncoder the engine scores

        def loop():
            return np.concatenate([np.asarray(ce.predict([[q, d] for d in docs], batch_size=32,
                                                         show_progress_bar=False)).reshape(-1)
                                   for q, docs in sample.groups])
        pairs = [[q, d] for q, d in zip(qs, ds, strict=True)]
        warm_ce = lambda: ce.predict(pairs[:1], batch_size=32, show_progress_bar=False)  # noqa: E731
        add("sequential loop (CrossEncoder.predict per query)", "peer", loop, warm_ce)
        add("CrossEncoder.predict, one flat call", "peer",
            lambda: ce.predict(pairs, batch_size=args.batch_size, show_progress_bar=False), warm_ce)
        if name == "bge-v2-m3":
            from FlagEmbedding import FlagReranker

            flag = FlagReranker(str(folder), use_fp16=False, devices=["cpu"], batch_size=args.batch_size,
                                max_length=512)
            add("FlagReranker.compute_score (the card's call)", "peer",
                lambda: flag.compute_score(pairs, batch_size=args.batch_size, max_length=512),
                lambda: flag.compute_score(pairs[:1], batch_size=args.batch_size, max_length=512))
            del flag
        del reranker, ce
        gc.collect()
        for runtime in ("onnx", "openvino"):
            if out["params"] > EXPORT_MAX_PARAMS:
                out["notes"].append(f"engine on {runtime}: not run (export of {out['params'] / 1e6:,.0f}M fp32 "
                                    f"parameters left out to keep the run within its hour)")
                continue
            try:
                r = load_replica(name, texts=texts, runtime=runtime, **common)
            except Exception as exc:
                out["notes"].append(f"engine on {runtime}: export failed ({type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0][:160]})")
                continue
            add(f"rrbench engine, {runtime}", "rrbench", lambda r=r: r.score_pairs(qs, ds),
                lambda r=r: r.score_pairs(qs[:1], ds[:1]))
            del r
            gc.collect()
    elif spec.backend == "generative":
        tok, model = reranker.tokenizer, reranker.model
        prefix, suffix = reranker.prefix_ids, reranker.suffix_ids
        yes, no = reranker.yes_id, reranker.no_id
        bodies = [reranker.format.render_body(q, d, reranker.instruction, reranker.template)
                  for q, d in zip(qs, ds, strict=True)]

        def recipe(texts_, batch=CARD_BATCH):
            scores = []
            for start in range(0, len(texts_), batch):
                enc = tok(texts_[start:start + batch], padding=False, truncation=True, add_special_tokens=False,
                          max_length=reranker.body_budget, return_attention_mask=False)
                ids = [prefix + x + suffix for x in enc["input_ids"]]
                width = max(len(x) for x in ids)
                pad = tok.pad_token_id or 0
                input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids])  # left padding (the card)
                mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
                with torch.no_grad():
                    logits = model(input_ids=input_ids, attention_mask=mask).logits[:, -1, :]
                pair = torch.stack([logits[:, no], logits[:, yes]], dim=1)
                scores.append(torch.nn.functional.log_softmax(pair, dim=1)[:, 1].exp().numpy())
            return np.concatenate(scores)

        bounds = np.cumsum([0] + [len(d) for _, d in sample.groups])
        add("sequential loop (the card's yes/no recipe per query)", "peer",
            lambda: np.concatenate([recipe(bodies[bounds[i]:bounds[i + 1]]) for i in range(len(sample.groups))]),
            lambda: recipe(bodies[:1]))
        add(f"the card's yes/no recipe, flat (batch {CARD_BATCH})", "peer", lambda: recipe(bodies),
            lambda: recipe(bodies[:1]))
    elif spec.backend == "listwise":
        out["notes"].append("jina-v3: the card's documented call is model.rerank(query, documents), which is what "
                            "rrbench's listwise backend calls per group; no separate peer row")
    out["peak_rss_mb_all_rows"] = round(peak_mb(), 0)
    return out


def why_not(name: str, out: dict) -> str:
    return (f"not run: fp32 needs about {out['estimate_fp32_gib']} GiB and bf16 about {out['estimate_bf16_gib']} "
            f"GiB with {out['available_gib']} GiB available on a machine shared with other jobs; on this AVX2 CPU "
            f"bf16 is emulated (about 100x slower than fp32), so a bf16 rate would take hours per pair")


# -- the driver ----------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(PLAN))
    parser.add_argument("--task", default="scifact-evidence")
    parser.add_argument("--split", default="dev_select")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pairs", type=int, default=None, help="override the per-model pair counts")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--peak-seconds", type=float, default=2.0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args), default=str), flush=True)
        return

    import torch

    from rrbench.models.loading import cpu_flags

    if args.threads:
        torch.set_num_threads(args.threads)
    peak = matmul_flops(torch.float32, args.peak_seconds)
    report = {"task": args.task, "split": args.split, "batch_size": args.batch_size,
              "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpus": os.cpu_count(),
              "torch_threads": torch.get_num_threads(),
              "cpu_flags": sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni"}),
              "fp32_matmul_gflops": round(peak / 1e9, 1), "models": []}
    print(f"fp32 matmul {peak / 1e9:.1f} GFLOP/s; capability {report['cpu_capability']}", flush=True)
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        cmd = [sys.executable, __file__, "--worker", name, "--task", args.task, "--split", args.split,
               "--batch-size", str(args.batch_size)]
        if args.pairs is not None:
            cmd += ["--pairs", str(args.pairs)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        started = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        try:
            result = json.loads(line)
        except json.JSONDecodeError:
            tail = proc.stderr.strip().splitlines()[-3:]
            result = {"model": name, "rows": [], "notes": [f"worker failed (exit {proc.returncode}): "
                                                           + " / ".join(tail)]}
        result["wall_s"] = round(time.time() - started, 1)
        finish(result, peak)
        report["models"].append(result)
        print(f"{name}: {result['wall_s']} s; " + "; ".join(f"{r['row']} {r['pairs_per_s']:.3f}"
                                                           for r in result["rows"]), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    print(table(report))


def finish(result: dict, peak: float) -> None:
    """Ratios: each row against the sequential loop, the engine's best against the best peer, ceiling shares."""
    rows = result["rows"]
    if not rows:
        return
    seq = next((r["pairs_per_s"] for r in rows if r["row"].startswith("sequential")), None)
    per_pair = result.get("gflops_per_pair")
    for r in rows:
        r["vs_sequential"] = r["pairs_per_s"] / seq if seq else None
        r["ceiling_share"] = r["pairs_per_s"] / (peak / (per_pair * 1e9)) if per_pair else None
    peers = [r for r in rows if r["kind"] == "peer"]
    engines = [r for r in rows if r["kind"] == "rrbench"]
    if peers and engines:
        best_peer = max(peers, key=lambda r: r["pairs_per_s"])
        best = max(engines, key=lambda r: r["pairs_per_s"])
        result["engine_vs_best_peer"] = best["pairs_per_s"] / best_peer["pairs_per_s"]
        result["best_peer"] = best_peer["row"]
        result["best_engine"] = best["row"]


def table(report: dict) -> str:
    lines = ["| model | params | tokens/pair | memory: estimate / measured (fp32) | row | pairs/s | vs sequential | "
             "share of fp32 ceiling |", "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for m in report["models"]:
        params = f"{m['params'] / 1e6:,.0f}M" if m.get("params") else "?"
        tokens = m.get("tokens_per_pair") or "-"
        mem = (f"{m['estimate_run_mb'] / 1024:.2f} / {m['rss_increase_mb'] / 1024:.2f} GiB"
               if m.get("estimate_run_mb") and m.get("rss_increase_mb") else f"{m.get('estimate_fp32_gib', '?')} GiB / -")
        name = m["model"] + (" (stand-in)" if m.get("stand_in") else "")
        if not m["rows"]:
            lines.append(f"| {name} | {params} | {tokens} | {mem} | {'; '.join(m['notes'])} | - | - | - |")
            continue
        for i, r in enumerate(m["rows"]):
            share = f"{r['ceiling_share']:.2f}" if r.get("ceiling_share") else "-"
            vs = f"{r['vs_sequential']:.2f}x" if r.get("vs_sequential") else "-"
            lines.append(f"| {name if i == 0 else ''} | {params if i == 0 else ''} | {tokens if i == 0 else ''} | "
                         f"{mem if i == 0 else ''} | {r['row']} | {r['pairs_per_s']:.3f} | {vs} | {share} |")
        if m.get("engine_vs_best_peer"):
            lines.append(f"| | | | | **engine / best peer** | **{m['engine_vs_best_peer']:.2f}x** | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
