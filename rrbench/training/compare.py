"""Paired comparison of two result records over the same queries (is the trained model really better?).

A paired sign-flip randomisation test on per-query differences: under the null hypothesis that the two systems are
exchangeable, each query's difference is equally likely to have either sign. It makes no normality assumption
(per-query nDCG is bounded and lumpy) and is the usual test in IR evaluation (Smucker et al., CIKM 2007).

    python -m rrbench.training.compare runs/A runs/B --metric nDCG@10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.errors import UsageError


def _per_query(record: dict[str, Any], metric: str) -> dict[str, float]:
    return {qid: float(values[metric]) for qid, values in record["per_query"].items() if metric in values}


def paired_test(record_a: dict[str, Any], record_b: dict[str, Any], metric: str = "nDCG@10",
                samples: int = 100_000, seed: int = 0) -> dict[str, Any]:
    """Mean of ``a - b`` over the queries both records scored, and the two-sided randomisation p-value."""
    a, b = _per_query(record_a, metric), _per_query(record_b, metric)
    if set(a) != set(b):
        raise UsageError(f"the two records scored different queries for {metric} ({len(a)} vs {len(b)}); "
                         f"compare runs on the same task split")
    if not a:
        raise UsageError(f"no per-query {metric} values to compare")
    ids = sorted(a)
    diff = np.asarray([a[q] - b[q] for q in ids])
    observed = abs(diff.mean())
    rng = np.random.default_rng(seed)
    signs = rng.choice(np.asarray([-1.0, 1.0]), size=(samples, len(diff)))
    null = np.abs((signs * diff).mean(axis=1))
    p_value = (1 + int((null >= observed - 1e-15).sum())) / (samples + 1)
    return {"metric": metric, "queries": len(ids), "mean_a": float(np.mean([a[q] for q in ids])),
            "mean_b": float(np.mean([b[q] for q in ids])), "mean_diff": float(diff.mean()),
            "wins": int((diff > 0).sum()), "losses": int((diff < 0).sum()), "ties": int((diff == 0).sum()),
            "p_value": float(p_value), "test": f"paired sign-flip randomisation, {samples} samples, two-sided"}


def _load(path: str) -> dict[str, Any]:
    file = Path(path)
    file = file / "results.json" if file.is_dir() else file
    if not file.is_file():
        raise UsageError(f"{file}: no results.json")
    return json.loads(file.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Paired randomisation test between two rrbench result records.")
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--metric", default="nDCG@10")
    args = parser.parse_args(argv)
    print(json.dumps(paired_test(_load(args.a), _load(args.b), args.metric), indent=2))


if __name__ == "__main__":
    main()
