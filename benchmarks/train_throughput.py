"""Training throughput: pairs/s for a pointwise loss (BCE) vs a listwise loss (ListNet) on the same data,
fp32 vs bf16 autocast on CPU.

Both losses see the same sentences: the listwise batches are the pointwise rows regrouped per query, and the count
is (query, sentence) pairs pushed through forward + backward + an AdamW step. Data: ``scifact-evidence`` train,
N0 random negatives (cheap, deterministic). Model: all-MiniLM-L6-v2 from the PyPI wheel as a cross-encoder.

    python benchmarks/train_throughput.py --steps 6 --threads 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from contextlib import nullcontext


def _batches(task, queries, negatives: int, pairs_per_batch: int, seed: int):
    from rrbench.training.data import DataOptions, build
    from rrbench.training.miners import load_miner

    negs = load_miner("n0-random", seed=seed).mine(task, queries, negatives)
    options = DataOptions(negatives=negatives, include_no_evidence=False)
    listwise = build(task, queries, "listwise", negs, options, seed=seed).columns
    # Regroup whole lists into batches of about pairs_per_batch pairs, then flatten the same lists for pointwise.
    groups, current, size = [], [], 0
    for q, docs, labels in zip(listwise["query"], listwise["docs"], listwise["labels"]):
        current.append((q, docs, labels))
        size += len(docs)
        if size >= pairs_per_batch:
            groups.append(current)
            current, size = [], 0
    return groups


def run(loss_id: str, dtype: str, groups, model_path: str, steps: int, max_length: int) -> dict:
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

    from rrbench.components.registry import resolve

    torch.manual_seed(0)
    model = CrossEncoder(model_path, num_labels=1, max_length=max_length, device="cpu")
    spec = resolve("losses", loss_id).spec
    loss = spec.load()(model, **spec.options)
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-5)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bf16" else nullcontext()
    model.train()

    def step(batch) -> int:
        if spec.input_format == "pointwise":
            queries = [q for q, docs, _ in batch for _ in docs]
            docs = [d for _, ds, _ in batch for d in ds]
            labels = torch.tensor([float(y >= 1) for _, _, ys in batch for y in ys])
            inputs = [queries, docs]
        else:
            inputs = [[q for q, _, _ in batch], [ds for _, ds, _ in batch]]
            labels = [torch.tensor(ys) for _, _, ys in batch]
        optimiser.zero_grad()
        with autocast:
            value = loss(inputs, labels)
        value.backward()
        optimiser.step()
        return sum(len(ds) for _, ds, _ in batch)

    step(groups[0])  # warm-up (allocator, one-time kernels)
    pairs, started = 0, time.perf_counter()
    for batch in groups[1:steps + 1]:
        pairs += step(batch)
    seconds = time.perf_counter() - started
    return {"loss": loss_id, "dtype": dtype, "steps": min(steps, len(groups) - 1), "pairs": pairs,
            "seconds": round(seconds, 2), "pairs_per_s": round(pairs / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--pairs-per-batch", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--losses", default="bce,listnet")
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--json", default=None, help="Also write the results here.")
    args = parser.parse_args()

    import torch

    from rrbench.tasks.resolve import get_task
    from rrbench.training.model import resolve_base

    torch.set_num_threads(args.threads)
    task = get_task("scifact-evidence")
    queries = sorted(task.split_queries("train"), key=lambda q: q.query_id)
    groups = _batches(task, queries, 4, args.pairs_per_batch, seed=13)
    model_path, _ = resolve_base("minilm-l6")
    rows = []
    for dtype in args.dtypes.split(","):
        for loss_id in args.losses.split(","):
            row = run(loss_id, dtype, groups, str(model_path), args.steps, args.max_length)
            rows.append(row)
            print(json.dumps(row), flush=True)
    meta = {"threads": args.threads, "pairs_per_batch": args.pairs_per_batch, "max_length": args.max_length,
            "torch": torch.__version__, "machine": platform.processor() or platform.machine()}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"meta": meta, "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
