"""Shared loading code for sentence-transformers models (bi-encoders and cross-encoders)."""

from __future__ import annotations

from typing import Any

from rrbench.errors import UsageError
from rrbench.models.base import ModelOptions
from rrbench.models.resolve import resolve_weights


def pick_device(requested: str | None) -> str:
    if requested:
        return requested
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def torch_dtype(name: str):
    import torch

    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if name not in table:
        raise UsageError(f"unknown dtype {name!r}; choose from {', '.join(sorted(table))}")
    return table[name]


def load_sentence_transformer(spec: Any, options: ModelOptions):
    """Load a SentenceTransformer for ``spec``; returns ``(model, weights_path, weights_source)``."""
    from sentence_transformers import SentenceTransformer

    path, source = resolve_weights(spec.hub_id, spec.revision, options.model_path,
                                   packaged=spec.packaged_weights, what=f"{spec.kind[:-1]} {spec.id}")
    model = SentenceTransformer(str(path), device=pick_device(options.device),
                                trust_remote_code=options.trust_remote_code)
    if options.max_length:
        model.max_seq_length = options.max_length
    elif spec.options.get("max_length") or getattr(spec, "max_length", None):
        model.max_seq_length = spec.options.get("max_length") or spec.max_length
    if options.dtype not in ("float32", "fp32"):
        model = model.to(torch_dtype(options.dtype))
    return model, str(path), source
