"""Shared loading code for sentence-transformers models (bi-encoders and cross-encoders)."""

from __future__ import annotations

import warnings
from typing import Any

from rrbench.components.bases import ModelOptions
from rrbench.models.engine import quantize_int8
from rrbench.models.resolve import resolve_weights
from rrbench.util.errors import UsageError


def pick_device(requested: str | None) -> str:
    if requested:
        return requested
    import torch  # lazy: torch costs seconds at start-up

    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux reports them (``/proc/cpuinfo``); empty where that file does not exist."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def cpu_bf16_is_native() -> bool:
    """AVX512_BF16 or AMX-BF16 instructions. torch's own check (``_is_mkldnn_bf16_supported``) answers True on any
    AVX-512 CPU, where oneDNN emulates bf16; the flags say what the silicon has. Without /proc/cpuinfo (macOS,
    Windows) torch's answer is used."""
    flags = cpu_flags()
    if flags:
        return bool(flags & {"avx512_bf16", "amx_bf16"})
    import torch  # lazy: torch costs seconds at start-up

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - torch without oneDNN
        return False


def bf16_is_native(device: str) -> bool:
    """Whether bf16 matrix products run in hardware on ``device``: CUDA GPUs that report bf16 support, CPUs with
    AVX512_BF16 or AMX. Elsewhere bf16 is emulated, which on CPUs is tens of times slower than fp32: the opposite of
    what a user asking for bf16 wants."""
    import torch  # lazy: torch costs seconds at start-up

    kind = torch.device(device).type
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind == "cpu":
        return cpu_bf16_is_native()
    return True  # other accelerators (mps, xpu): trust the user


def resolve_dtype(name: str, device: str, runtime: str = "torch") -> str:
    """``--dtype auto`` -> the fastest dtype that keeps scores faithful on ``device``: bf16 where it is native
    (AVX512_BF16/AMX CPUs, bf16 GPUs), fp16 on GPUs without bf16, fp32 otherwise (ONNX Runtime's CPU kernels: fp32).
    Any other name is returned unchanged; int8 is never chosen automatically (it changes rankings)."""
    if name != "auto":
        return name
    import torch  # lazy: torch costs seconds at start-up

    kind = torch.device(device).type
    if kind == "cuda":
        return "bfloat16" if bf16_is_native(device) else "float16"
    if kind == "cpu" and runtime != "onnx" and bf16_is_native(device):
        return "bfloat16"
    return "float32"


BF16_MODES = ("auto", "on", "off", "force")


def resolve_bf16_training(mode: str, device: str) -> bool:
    """``rrbench train --bf16 MODE`` -> whether to train with bf16 autocast on ``device``.

    Emulated bf16 makes CPU training about 100x slower, so ``auto`` uses bf16 only where it is native and falls back
    to fp32 (with a warning) elsewhere; ``on`` refuses to run emulated; ``force`` runs bf16 regardless (warned)."""
    if mode not in BF16_MODES:
        raise UsageError(f"--bf16 must be one of {', '.join(BF16_MODES)}, got {mode!r}")
    if mode == "off":
        return False
    if bf16_is_native(device):
        return True
    if mode == "auto":
        warnings.warn(f"--bf16 auto: bf16 is not native on this {device} (no AVX512_BF16/AMX, or no bf16 GPU "
                      f"support), where it would run emulated and far slower; training in fp32", UserWarning,
                      stacklevel=2)
        return False
    if mode == "on":
        raise UsageError(f"--bf16 on: bf16 is not native on this {device} (no AVX512_BF16/AMX, or no bf16 GPU "
                         f"support); use --bf16 auto (fp32 here) or --bf16 force (emulated, far slower)")
    warn_if_bf16_emulated(device)
    return True


_warned_emulated: set[str] = set()


def torch_dtype(name: str, device: str | None = None) -> Any:
    """The torch dtype for a ``--dtype`` name; with ``device``, warn once when bf16 would be emulated there."""
    import torch  # lazy: torch costs seconds at start-up

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


def load_sentence_transformer(spec: Any, options: ModelOptions) -> Any:
    """Load a SentenceTransformer for ``spec``; returns ``(model, weights_path, weights_source)``."""
    from sentence_transformers import SentenceTransformer  # lazy: heavy: pulls in torch

    what = f"{spec.kind[:-1]} {spec.id}"
    path, source = resolve_weights(spec.hub_id, spec.revision, options.model_path,
                                   packaged=spec.packaged_weights, what=what)
    device = pick_device(options.device)
    model = SentenceTransformer(str(path), device=device, trust_remote_code=options.trust_remote_code)
    wanted = options.max_length or spec.options.get("max_length") or getattr(spec, "max_length", None)
    if wanted:
        config = getattr(getattr(model[0], "auto_model", None), "config", None)
        model.max_seq_length = (clipped_max_length(wanted, None, config, what, warn=options.max_length is not None)
                                if config is not None else wanted)
    if options.dtype == "int8":
        if not device.startswith("cpu"):
            raise UsageError(f"{what}: --dtype int8 (dynamic quantisation) is CPU only")

        quantize_int8(model)
    elif options.dtype not in ("float32", "fp32"):
        model = model.to(torch_dtype(options.dtype, device))
    return model, str(path), source


#: Model types whose position ids start after the padding index (RoBERTa's family): ``pad_token_id + 1`` of their
#: ``max_position_embeddings`` are never reachable by a token.
_POSITION_OFFSET_TYPES = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "data2vec-text",
                          "ibert", "markuplm", "roberta-prelayernorm", "bart"}
#: What tokenizers report as ``model_max_length`` when they know no limit (transformers' VERY_LARGE_INTEGER).
_NO_LIMIT = 10**9


def position_limit(config: Any) -> int | None:
    """The longest input a model's config allows: its position embeddings (``max_position_embeddings``, less
    RoBERTa's padding offset); None when the config declares none."""
    config = getattr(config, "text_config", None) or config
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        return None
    if getattr(config, "model_type", None) in _POSITION_OFFSET_TYPES:
        limit -= int(getattr(config, "pad_token_id", 1) or 0) + 1
    return limit if limit > 0 else None


def clipped_max_length(requested: int | None, tokenizer_limit: int | None, config: Any, what: str,
                       warn: bool = True) -> int | None:
    """The token limit a model can actually take: what was asked for (``--max-length`` or the spec), else what the
    tokenizer claims, never more than the config's position embeddings. A tokenizer that claims more than the model
    has positions (a tiny test model with 128 positions and a 512-token tokenizer) would otherwise crash the forward
    pass ("size of tensor a (193) must match ... (128)"); an explicit request beyond the limit is clipped with a
    warning (``warn``: the user asked for that length; a spec's or a folder's default is clipped silently)."""
    limit = position_limit(config)
    claimed = tokenizer_limit if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < _NO_LIMIT else None
    wanted = requested or claimed
    if limit is None:
        return wanted
    if wanted is None or wanted > limit:
        if warn and requested and requested > limit:
            warnings.warn(f"{what}: max length {requested} exceeds the model's {limit} positions; using {limit}",
                          UserWarning, stacklevel=3)
        return limit
    return wanted
