"""Memory planning: estimate a reranker's peak memory from its architecture before loading it, refuse with one line
when it cannot fit, and give the engine the largest batch that fits.

Why: an 8B reranker at fp32 on a 24 GB machine is killed by the kernel's OOM killer, which leaves no message, no
record and sometimes a frozen machine; a long batch of a large model can do the same after an hour of work. The
estimate costs a config read and a meta-device model (no allocation), so it runs before any weight is loaded.

The estimate is deliberately simple and is checked against measurements (``tests/models/test_memory.py``: within
25% of the measured increase of peak RSS on replicas of a few hundred million parameters):

- **weights**: parameters x bytes of the dtype (int8: the Linear weights at one byte, the rest at fp32);
- **activations** of one forward under ``inference_mode``: tensors die after each layer, so the peak is one layer's
  live set. Per token: the residual stream and attention in and out (about 4 x hidden), query/key/value, the MLP's
  intermediate tensors (2 x intermediate, 3 for gated MLPs: SwiGLU/GeGLU) and, per row, one attention-score matrix
  (heads x T x T, twice for the softmax) in the activation dtype; DeBERTa's disentangled attention adds its
  content-to-position and position-to-content scores over the relative span;
- **headroom** on top of what is available: 10% and 256 MiB (allocator, tokenizer, Python objects).

Available memory is ``MemAvailable`` (``/proc/meminfo``, else psutil) on a CPU and ``torch.cuda.mem_get_info`` on a
GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from rrbench.util.errors import UsageError

GiB = 1024 ** 3
HEADROOM_FRACTION = 0.10
HEADROOM_BYTES = 256 * 1024 ** 2
#: activation dtype bytes by --dtype (int8 quantises weights only; activations stay fp32)
_ACT_BYTES = {"float32": 4, "fp32": 4, "int8": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2}
#: MLP activations that make an MLP gated (two input projections multiplied): SwiGLU, GeGLU
_GATED_TYPES = ("qwen2", "qwen3", "gemma", "gemma2", "cost_wise_gemma", "llama", "mistral")


class MemoryPlanError(UsageError):
    """The model (or one batch of it) does not fit the memory available: refused before the OOM killer acts."""


@dataclass(frozen=True)
class MemoryModel:
    """What the estimate needs to know about a model."""

    name: str
    params: int
    linear_params: int
    layers: int
    hidden: int
    intermediate: int
    heads: int
    qkv_width: int
    gated: bool
    dtype: str
    #: DeBERTa's disentangled attention: the relative span (position buckets) whose position-to-content and
    #: content-to-position scores it materialises per row and head; 0 elsewhere
    relative_span: int = 0
    head_dim: int = 64

    @property
    def weight_bytes(self) -> int:
        if self.dtype == "int8":
            return self.linear_params + 4 * (self.params - self.linear_params)
        return self.params * _ACT_BYTES.get(self.dtype, 4)

    def activation_bytes(self, rows: int, width: int) -> int:
        """Peak bytes of activations for a batch of ``rows`` sequences padded to ``width`` tokens."""
        per_token = 4 * self.hidden + self.qkv_width + (3 if self.gated else 2) * self.intermediate
        scores = 2 * self.heads * width * width
        if self.relative_span:  # c2p and p2c scores (T x 2 span) and the projected position keys/queries, twice
            span = 2 * self.relative_span
            scores += 4 * self.heads * (width * span + span * self.head_dim)
        return _ACT_BYTES.get(self.dtype, 4) * rows * (width * per_token + scores)

    def peak_bytes(self, rows: int, width: int) -> int:
        return self.weight_bytes + self.activation_bytes(rows, width)

    def describe(self, rows: int, width: int) -> str:
        return (f"{gib(self.peak_bytes(rows, width))} at {self.dtype} (weights {gib(self.weight_bytes)} + a batch of "
                f"{rows} x {width} tokens {gib(self.activation_bytes(rows, width))})")


def gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB" if n >= 0.1 * GiB else f"{n / 1024 ** 2:.0f} MiB"


def _get(config: Any, *names: str, default: int = 0) -> int:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return default


def memory_model(config: Any, params: int, linear_params: int, dtype: str, name: str = "model") -> MemoryModel:
    """A :class:`MemoryModel` from a transformers config and parameter counts."""
    hidden = _get(config, "hidden_size", "d_model")
    heads = _get(config, "num_attention_heads", default=1)
    head_dim = _get(config, "head_dim", default=hidden // max(heads, 1))
    kv = _get(config, "num_key_value_heads", default=heads)
    return MemoryModel(name=name, params=params, linear_params=linear_params,
                       layers=_get(config, "num_hidden_layers", default=1), hidden=hidden,
                       intermediate=_get(config, "intermediate_size", default=4 * hidden), heads=heads,
                       qkv_width=heads * head_dim + 2 * kv * head_dim,
                       gated=str(getattr(config, "model_type", "")) in _GATED_TYPES, dtype=dtype,
                       relative_span=_relative_span(config), head_dim=head_dim)


def _relative_span(config: Any) -> int:
    if not getattr(config, "relative_attention", False):
        return 0
    buckets = _get(config, "position_buckets")
    return buckets or _get(config, "max_relative_positions", "max_position_embeddings", default=512)


def count_on_meta(config: Any, cls: type) -> tuple[int, int]:
    """``(parameters, Linear-weight parameters)`` of ``cls(config)`` built on the meta device (nothing allocated)."""
    import torch  # lazy: torch costs seconds at start-up
    from transformers.utils import logging as hf_logging  # lazy: heavy: pulls in torch

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with torch.device("meta"):
            model = cls(config)
    finally:
        hf_logging.set_verbosity(previous)
    params = sum(p.numel() for p in model.parameters())
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return int(params), int(linear)


def memory_model_for_path(path: str | Path, dtype: str, name: str = "model", cls: type | None = None,
                           config: Any = None) -> MemoryModel | None:
    """The memory model of the checkpoint at ``path`` from its ``config.json`` (no weights read). ``cls``/``config``
    name a model class and config transformers does not ship (FlagEmbedding's); without them, a class that is not
    transformers' own (repository code) gives None, and such a model is loaded without a plan."""
    import transformers  # lazy: heavy: pulls in torch

    if config is None:
        if not (Path(path) / "config.json").is_file():
            return None
        try:
            config = transformers.AutoConfig.from_pretrained(str(path))
        except (ValueError, KeyError, OSError):
            return None
    if cls is None:
        classes = [getattr(transformers, c, None) for c in (getattr(config, "architectures", None) or [])]
        cls = next((c for c in classes if c is not None), None)
    if cls is None:
        return None
    params, linear = count_on_meta(config, cls)
    return memory_model(config, params, linear, dtype, name)


def plan_before_load(path: str | Path, dtype: str, device: str, max_length: int | None, name: str,
                     enabled: bool = True, cls: type | None = None, config: Any = None) -> MemoryModel | None:
    """Estimate the model at ``path`` and refuse (:class:`MemoryPlanError`) when its weights and one row of
    ``min(max_length, 512)`` tokens do not fit; the engine's :class:`BatchPlan` handles longer rows at run time.
    Returns the memory model (None when disabled or unknown)."""
    if not enabled:
        return None
    model = memory_model_for_path(path, dtype, name, cls=cls, config=config)
    if model is not None:
        check_fits(model, device, min(max_length or 512, 512))
    return model


def batch_plan(model: MemoryModel | None, device: str) -> BatchPlan | None:
    """The engine's plan for a loaded model (None without a memory model)."""
    return BatchPlan(model, device) if model is not None else None


def available_bytes(device: str = "cpu") -> int | None:
    """Memory a new allocation can use on ``device`` now; None when unknown."""
    if device.startswith("cuda"):
        import torch  # lazy: torch costs seconds at start-up

        try:
            free, _ = torch.cuda.mem_get_info(torch.device(device))
            return int(free)
        except (RuntimeError, AssertionError):
            return None
    if device != "cpu" and not device.startswith("cpu"):
        return None
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(psutil.virtual_memory().available)


def usable(available: int) -> int:
    """What the plan lets a model use of ``available``: all but the headroom."""
    return int(available * (1 - HEADROOM_FRACTION)) - HEADROOM_BYTES


def check_fits(model: MemoryModel, device: str, width: int, available: int | None = None) -> None:
    """Refuse, with one line naming the model, the estimate and what is free, when the weights and one row of
    ``width`` tokens do not fit; before anything is loaded."""
    available = available_bytes(device) if available is None else available
    if available is None:
        return
    need = model.peak_bytes(1, width)
    if need > usable(available):
        raise MemoryPlanError(
            f"{model.name} needs about {model.describe(1, width)} but {gib(available)} is available on {device}; "
            f"use a smaller --dtype (bfloat16 halves the weights), a smaller model or a lower --max-length")


class BatchPlan:
    """The engine's memory plan: the largest number of rows of a given width that fits what is available.

    ``available`` is read once, after the model is loaded (its weights are then part of the process, not of the
    budget), so a plan never counts the weights twice.
    """

    def __init__(self, model: MemoryModel, device: str, available: int | None = None) -> None:
        self.model = model
        self.device = device
        self.available = available_bytes(device) if available is None else available

    def max_rows(self, width: int) -> int | None:
        """None when memory is unknown; 0 when not even one row fits."""
        if self.available is None:
            return None
        budget = usable(self.available)
        per_row = self.model.activation_bytes(1, width)
        return max(0, budget // per_row) if per_row else None

    def refuse(self, width: int) -> MemoryPlanError:
        return MemoryPlanError(
            f"{self.model.name}: one sequence of {width} tokens needs about "
            f"{gib(self.model.activation_bytes(1, width))} of activations at {self.model.dtype} but "
            f"{gib(self.available or 0)} is available on {self.device}; lower --max-length or use a smaller --dtype")
