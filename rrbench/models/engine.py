"""The inference engine shared by the pointwise backends: scoring is where users spend their compute.

A backend gives the engine two things: ``encode`` (texts -> unpadded token-id lists, the model's own tokenizer and
template) and ``forward`` (a padded batch of tensors -> one score per row). The engine owns everything in between,
because that is where the time goes on a sentence-level task (posts have few sentences, queries are short):

- **multi-query batching**: pairs of many queries are scored together; nothing is done per query;
- **de-duplication**: identical (query, text) pairs are scored once (a sentence repeated across posts, a query
  repeated across criteria);
- **length bucketing with dynamic padding**: sequences are sorted by token length and each batch is padded only to
  its own longest member, so short pairs do not pay for long ones; right padding, so a row's result never depends on
  what it was batched with (decoder backends read the last *real* token);
- ``torch.inference_mode`` and an optional autocast dtype (bf16 is about 2x fp32 on CPUs with AVX512_BF16, fp16 on
  GPUs), set by the backend; or, with ``framework="numpy"``, a forward that takes int64 numpy arrays (an ONNX Runtime
  or OpenVINO session, see :mod:`rrbench.models.runtimes`), so every runtime gets the same batching;
- **memory planning**: with a :class:`rrbench.models.memory.BatchPlan`, a batch never has more rows than the memory
  estimate of its padded width allows (the largest batch that fits), and a single sequence too long for the memory
  available is refused with one line before it runs;
- **out of memory**: a batch that does not fit is split in half and retried, and later batches stay at the smaller
  size; a single sequence that does not fit raises :class:`RerankerOOMError` (the runner stops, or falls back to the
  retriever ranking when the user opted in with ``--on-oom fallback``).

Longest batches run first, so an OOM shows up at the start of a run rather than after an hour.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rrbench.models.memory import BatchPlan
from rrbench.util.errors import PluginError, UsageError

log = logging.getLogger(__name__)

Features = dict[str, list[int]]
EncodeFn = Callable[[Sequence[str], Sequence[str]], list[Features]]
ForwardFn = Callable[[dict[str, Any]], Any]

OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory")


class RerankerOOMError(PluginError):
    """The reranker ran out of memory even on a single sequence."""


def is_oom(exc: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures (torch raises OutOfMemoryError or RuntimeError with a message)."""
    try:
        import torch  # lazy: torch costs seconds at start-up

        if isinstance(exc, torch.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):  # pragma: no cover - old torch
        pass
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or any(m in str(exc).lower() for m in OOM_MARKERS))


@dataclass
class EngineStats:
    """What the engine did on its last call(s); backends expose it in ``describe()`` for the manifest."""

    pairs: int = 0
    unique_pairs: int = 0
    batches: int = 0
    padded_tokens: int = 0
    real_tokens: int = 0
    oom_retries: int = 0
    batch_size_now: int = 0
    memory_limited_batches: int = 0
    events: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = {"pairs": self.pairs, "unique_pairs": self.unique_pairs, "batches": self.batches,
               "padding_overhead": round(self.padded_tokens / self.real_tokens - 1, 4) if self.real_tokens else 0.0,
               "oom_retries": self.oom_retries, "batch_size_now": self.batch_size_now}
        if self.memory_limited_batches:  # only when the memory plan cut a batch (older records have no such key)
            out["memory_limited_batches"] = self.memory_limited_batches
        return out


class InferenceEngine:
    """Batch, pad and run a scoring forward over token sequences; see the module docstring for why."""

    def __init__(self, forward: ForwardFn, *, pad_token_id: int, batch_size: int = 32,
                 token_budget: int | None = None, device: str = "cpu", autocast_dtype: Any = None,
                 sort_by_length: bool = True, dedupe: bool = True, name: str = "reranker",
                 framework: str = "torch", memory_plan: BatchPlan | None = None) -> None:
        if batch_size < 1:
            raise UsageError(f"{name}: batch size must be >= 1, got {batch_size}")
        if token_budget is not None and token_budget < 1:
            raise UsageError(f"{name}: token budget must be >= 1, got {token_budget}")
        self.forward = forward
        self.pad_token_id = int(pad_token_id)
        self.batch_size = batch_size
        self.token_budget = token_budget
        self.device = device
        self.autocast_dtype = autocast_dtype
        self.sort_by_length = sort_by_length
        self.dedupe = dedupe
        self.name = name
        if framework not in ("torch", "numpy"):
            raise UsageError(f"{name}: engine framework must be torch or numpy, got {framework!r}")
        self.framework = framework
        self.memory_plan = memory_plan
        self.stats = EngineStats(batch_size_now=batch_size)

    # -- public ---------------------------------------------------------------------------------------------------
    def score_pairs(self, queries: Sequence[str], documents: Sequence[str], encode: EncodeFn) -> np.ndarray:
        """One float64 score per (queries[i], documents[i]); identical pairs are encoded and scored once."""
        if len(queries) != len(documents):
            raise UsageError(f"{self.name}: {len(queries)} queries but {len(documents)} documents")
        if not queries:
            return np.empty(0, dtype=np.float64)
        if self.dedupe:
            index: dict[tuple[str, str], int] = {}
            inverse = np.fromiter((index.setdefault((q, d), len(index)) for q, d in zip(queries, documents, strict=True)),
                                  dtype=np.int64, count=len(queries))
            unique = list(index)
            uq, ud = [u[0] for u in unique], [u[1] for u in unique]
        else:
            inverse, uq, ud = np.arange(len(queries)), list(queries), list(documents)
        scores = self.score_features(encode(uq, ud))
        self.stats.pairs += len(queries)
        self.stats.unique_pairs += len(uq)
        return scores[inverse]

    def score_features(self, features: Sequence[Features]) -> np.ndarray:
        """Scores of already-encoded sequences, in input order."""
        n = len(features)
        out = np.empty(n, dtype=np.float64)
        if n == 0:
            return out
        lengths = np.fromiter((len(f["input_ids"]) for f in features), dtype=np.int64, count=n)
        if (lengths < 1).any():
            raise PluginError(f"{self.name}: the tokenizer produced an empty sequence")
        order = np.argsort(-lengths, kind="stable") if self.sort_by_length else np.arange(n)
        pending = list(self._plan(order, lengths))[::-1]  # a stack; longest batch first
        while pending:
            batch = pending.pop()
            try:
                scores = self._run(batch, features, lengths)
            except Exception as exc:
                if not is_oom(exc):
                    raise
                self._free_memory()
                if len(batch) == 1:
                    raise RerankerOOMError(
                        f"{self.name} ran out of memory on a single sequence of {int(lengths[batch[0]])} tokens; "
                        f"lower --max-length, use a smaller --dtype, or pass --on-oom fallback to use the "
                        f"retriever's ranking instead") from None
                half = len(batch) // 2
                self.batch_size = max(1, min(self.batch_size, half))
                self.stats.oom_retries += 1
                self.stats.batch_size_now = self.batch_size
                message = f"out of memory on a batch of {len(batch)}; retrying with batches of {half}"
                self.stats.events.append(message)
                log.warning("%s: %s", self.name, message)
                # Re-plan everything not yet scored at the smaller size: the batches planned before the OOM are as
                # large as the one that failed, so keeping them would fail (and be retried) once each.
                rest = np.concatenate([batch, *pending[::-1]])
                pending = list(self._plan(rest, lengths))[::-1]
                continue
            out[batch] = scores
        return out

    # -- internals ------------------------------------------------------------------------------------------------
    def _plan(self, order: np.ndarray, lengths: np.ndarray) -> Any:
        """Cut the (sorted) order into batches of at most batch_size rows and token_budget padded tokens."""
        start = 0
        while start < len(order):
            stop = min(start + self.batch_size, len(order))
            if self.token_budget is not None:
                longest = int(lengths[order[start]]) if self.sort_by_length else 0
                rows = 0
                for i in range(start, stop):
                    longest = max(longest, int(lengths[order[i]]))
                    if (rows + 1) * longest > self.token_budget and rows > 0:
                        break
                    rows += 1
                stop = start + max(rows, 1)
            if self.memory_plan is not None:
                longest = int(lengths[order[start:stop]].max())
                fits = self.memory_plan.max_rows(longest)
                if fits == 0:
                    raise self.memory_plan.refuse(longest)
                if fits is not None and fits < stop - start:
                    stop = start + fits
                    self.stats.memory_limited_batches += 1
            yield order[start:stop]
            start = stop

    def _collate(self, batch: np.ndarray, features: Sequence[Features], lengths: np.ndarray) -> dict[str, Any]:
        width = int(lengths[batch].max())
        keys = [k for k in features[int(batch[0])] if k in ("input_ids", "token_type_ids", "attention_mask")]
        arrays = {"input_ids": np.full((len(batch), width), self.pad_token_id, dtype=np.int64),
                  "attention_mask": np.zeros((len(batch), width), dtype=np.int64)}
        if "token_type_ids" in keys:
            arrays["token_type_ids"] = np.zeros((len(batch), width), dtype=np.int64)
        for row, i in enumerate(batch):
            f = features[int(i)]
            n = int(lengths[i])
            arrays["input_ids"][row, :n] = f["input_ids"]
            arrays["attention_mask"][row, :n] = 1
            if "token_type_ids" in arrays:
                arrays["token_type_ids"][row, :n] = f["token_type_ids"]
        self.stats.batches += 1
        self.stats.padded_tokens += len(batch) * width
        self.stats.real_tokens += int(lengths[batch].sum())
        if self.framework == "numpy":
            return arrays
        import torch  # lazy: torch costs seconds at start-up

        return {k: torch.from_numpy(v).to(self.device) for k, v in arrays.items()}

    def _run(self, batch: np.ndarray, features: Sequence[Features], lengths: np.ndarray) -> np.ndarray:
        inputs = self._collate(batch, features, lengths)
        if self.framework == "numpy":
            return self._check_count(np.asarray(self.forward(inputs), dtype=np.float64).reshape(-1), batch)
        import torch  # lazy: torch costs seconds at start-up

        device_type = torch.device(self.device).type
        autocast = (torch.autocast(device_type=device_type, dtype=self.autocast_dtype)
                    if self.autocast_dtype is not None else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            scores = self.forward(inputs)
        scores = scores.detach().float().cpu().numpy().astype(np.float64).reshape(-1)
        return self._check_count(scores, batch)

    def _check_count(self, scores: np.ndarray, batch: np.ndarray) -> np.ndarray:
        if scores.shape[0] != len(batch):
            raise PluginError(f"{self.name}: forward returned {scores.shape[0]} scores for a batch of {len(batch)}")
        return scores

    def _free_memory(self) -> None:
        gc.collect()
        try:
            import torch  # lazy: torch costs seconds at start-up

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass


def autocast_dtype_for(dtype: str, device: str) -> Any:
    """The autocast dtype for a user ``--dtype`` (None for fp32); int8 is handled by quantising weights instead."""
    import torch  # lazy: torch costs seconds at start-up

    if dtype in ("float32", "fp32", "int8"):
        return None
    if dtype in ("bfloat16", "bf16"):
        return torch.bfloat16
    if dtype in ("float16", "fp16"):
        if torch.device(device).type == "cpu":
            raise UsageError("--dtype float16 is not supported on CPU; use bfloat16")
        return torch.float16
    raise UsageError(f"unknown dtype {dtype!r}; choose from float32, bfloat16, float16, int8")


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantisation of the Linear layers, **in place** (CPU only; ranking fidelity is reported by the
    benchmark). Weights become int8 once; activations are quantised per batch, so no calibration data is needed.

    torch marks ``torch.ao.quantization`` deprecated in favour of torchao, but it is still the one dynamic-int8 path
    with fbgemm kernels for x86 CPUs in the pinned torch; its deprecation warnings are silenced here only.
    """

    import torch  # lazy: torch costs seconds at start-up

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
