"""Measuring a reranker's scoring speed on a task's real pairs: what ``rrbench bench speed``, the verifier's
``leaderboard check --time`` and ``benchmarks/zoo_speed.py`` share, so their pairs/s mean the same thing.

Pairs are every (query, sentence of its post) pair of a split, queries in id order, the first ``limit`` of them: real
lengths, the same pairs for every model. A rate is pairs scored divided by the wall time of one scoring call, after
a warm-up call on a few pairs (first-call costs: allocator, kernels, lazy initialisation). Tokens per pair are the
engine's count of real (unpadded) tokens, or the tokenizer's where a backend has no engine, so rows with different
prompts or tokenizers can be compared per token too.
"""

from __future__ import annotations

import platform
import resource
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rrbench.components.bases import Reranker
from rrbench.models.loading import cpu_flags
from rrbench.tasks.loader import Task, candidate_text
from rrbench.tasks.resolve import get_task

WARMUP_PAIRS = 4


@dataclass
class PairSample:
    """Pairs grouped by query (listwise rerankers score a query's candidates together)."""

    groups: list[tuple[str, list[str]]]

    @property
    def queries(self) -> list[str]:
        return [q for q, docs in self.groups for _ in docs]

    @property
    def documents(self) -> list[str]:
        return [d for _, docs in self.groups for d in docs]

    def __len__(self) -> int:
        return sum(len(docs) for _, docs in self.groups)

    def texts(self) -> list[str]:
        return [q for q, _ in self.groups] + self.documents


def task_pairs(task_id: str = "scifact-evidence", split: str = "dev_select", limit: int | None = None) -> PairSample:
    """The first ``limit`` (query, sentence) pairs of ``split`` of a registered task (see :func:`pairs_of`)."""
    return pairs_of(get_task(task_id), split, limit)


def pairs_of(task: Task, split: str, limit: int | None = None) -> PairSample:
    """The first ``limit`` (query, sentence) pairs of ``split``, queries in id order (a query is cut short at the
    limit), from the task's own files."""
    groups: list[tuple[str, list[str]]] = []
    total = 0
    for query in sorted(task.split_queries(split), key=lambda q: q.query_id):
        docs = [candidate_text(task, int(i), 0) for i in task.candidates(query)]
        if limit is not None:
            docs = docs[:max(0, limit - total)]
        if docs:
            groups.append((query.text, docs))
            total += len(docs)
        if limit is not None and total >= limit:
            break
    return PairSample(groups)


def peak_rss_bytes() -> int:
    """The process's peak resident set so far (Linux reports KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def current_rss_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="utf-8") as handle:
            return int(handle.read().split()[1]) * resource.getpagesize()
    except OSError:
        return peak_rss_bytes()


def score_sample(reranker: Reranker, sample: PairSample) -> np.ndarray:
    """Scores of every pair: one pair-scoring call for pointwise rerankers, one list per query for listwise ones."""
    if getattr(reranker, "interaction", "pointwise") == "listwise":
        return np.concatenate([np.asarray(reranker.score_list(q, docs), dtype=np.float64)  # type: ignore[attr-defined]
                               for q, docs in sample.groups])
    return np.asarray(reranker.score_pairs(sample.queries, sample.documents),  # type: ignore[attr-defined]
                      dtype=np.float64)


def tokens_per_pair(reranker: Reranker, sample: PairSample) -> float | None:
    """Mean real tokens per pair as the reranker's own encoder counts them (None where it cannot say)."""
    encode = getattr(reranker, "_encode", None)
    if not callable(encode):
        return None
    queries = sample.queries
    prefix = getattr(reranker, "_queries", None)
    if callable(prefix):
        queries = prefix(queries)
    features = encode(queries, sample.documents)
    return float(np.mean([len(f["input_ids"]) for f in features]))


@dataclass
class SpeedResult:
    pairs: int
    seconds: float
    tokens_per_pair: float | None
    peak_rss_mb: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.seconds if self.seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "seconds": round(self.seconds, 3), "pairs_per_s": round(self.pairs_per_s, 3),
                "tokens_per_pair": None if self.tokens_per_pair is None else round(self.tokens_per_pair, 1),
                "peak_rss_mb": round(self.peak_rss_mb, 1), **self.extra}


def measure(reranker: Reranker, sample: PairSample, warmup: int = WARMUP_PAIRS) -> SpeedResult:
    """Warm up on the first ``warmup`` pairs, then time one scoring call over the whole sample."""
    if warmup and len(sample):
        first_query, first_docs = sample.groups[0]
        score_sample(reranker, PairSample([(first_query, first_docs[:warmup])]))
    started = time.perf_counter()
    scores = score_sample(reranker, sample)
    seconds = time.perf_counter() - started
    if scores.shape[0] != len(sample):
        raise RuntimeError(f"{len(sample)} pairs scored into {scores.shape[0]} scores")
    return SpeedResult(pairs=len(sample), seconds=seconds, tokens_per_pair=tokens_per_pair(reranker, sample),
                       peak_rss_mb=peak_rss_bytes() / 2 ** 20)


def machine() -> dict[str, Any]:
    """What a rate was measured on: CPU model and capability, threads, GPU."""
    import torch  # lazy: torch costs seconds at start-up

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    out: dict[str, Any] = {"cpu": cpu, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                           "cpu_bf16": sorted(cpu_flags() & {"avx512_bf16", "amx_bf16"}),
                           "torch_threads": torch.get_num_threads(), "gpu": None}
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def describe_machine(info: dict[str, Any], device: str = "cpu") -> str:
    """``GPU NAME`` or ``CPU MODEL (AVX2, 2 threads)``: the words the HTML board shows beside a measured rate."""
    if device.startswith("cuda") and info.get("gpu"):
        return f"GPU {info['gpu']}"
    return f"CPU {info.get('cpu')} ({info.get('cpu_capability')}, {info.get('torch_threads')} threads)"


def sample_summary(sample: PairSample) -> dict[str, Any]:
    return {"pairs": len(sample), "queries": len(sample.groups)}
