"""Shared loading code for sentence-transformers models (bi-encoders and cross-encoders)."""

from __future__ import annotations

import warnings
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


def bf16_is_native(device: str) -> bool:
    """Whether bf16 matrix products run in hardware on ``device``: CUDA GPUs that report bf16 support, CPUs with
    AVX512_BF16 or AMX (oneDNN's check). Elsewhere torch emulates bf16, which on CPUs is tens of times slower than
    fp32: the opposite of what a user asking for bf16 wants."""
    import torch

    kind = torch.device(device).type
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # pragma: no cover - torch without oneDNN
            return False
    return True  # other accelerators (mps, xpu): trust the user


_warned_emulated: set[str] = set()


def torch_dtype(name: str, device: str | None = None):
    """The torch dtype for a ``--dtype`` name; with ``device``, warn once when bf16 would be emulated there."""
    import torch

    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if name not in table:
        raise UsageError(f"unknown dtype {name!r}; choose from {', '.join(sorted(table))}")
    if device is not None and table[name] is torch.bfloat16:
        warn_if_bf16_emulated(device)
    return table[name]


def warn_if_bf16_emulated(device: str) -> None:
    if device in _warned_emulated or bf16_is_native(device):
        return
    _warned_emulated.add(device)
    warnings.warn(f"bf16 is emulated on this {device} (no AVX512_BF16/AMX or no bf16 GPU support): expect it to be "
                  f"slower than float32, not faster", UserWarning, stacklevel=3)


def load_sentence_transformer(spec: Any, options: ModelOptions):
    """Load a SentenceTransformer for ``spec``; returns ``(model, weights_path, weights_source)``."""
    from sentence_transformers import SentenceTransformer

    what = f"{spec.kind[:-1]} {spec.id}"
    path, source = resolve_weights(spec.hub_id, spec.revision, options.model_path,
                                   packaged=spec.packaged_weights, what=what)
    device = pick_device(options.device)
    model = SentenceTransformer(str(path), device=device, trust_remote_code=options.trust_remote_code)
    if options.max_length:
        model.max_seq_length = options.max_length
    elif spec.options.get("max_length") or getattr(spec, "max_length", None):
        model.max_seq_length = spec.options.get("max_length") or spec.max_length
    if options.dtype == "int8":
        if not device.startswith("cpu"):
            raise UsageError(f"{what}: --dtype int8 (dynamic quantisation) is CPU only")
        from rrbench.engine import quantize_int8

        quantize_int8(model)
    elif options.dtype not in ("float32", "fp32"):
        model = model.to(torch_dtype(options.dtype, device))
    return model, str(path), source
