"""Candidate generators (first stage)."""

from __future__ import annotations

from typing import Any

from rrbench.models.base import ModelOptions
from rrbench.retrievers.base import Retriever
from rrbench.specs import validate_options


def load_retriever(name: str, model_path: str | None = None, device: str | None = None,
                   **extra: Any) -> Retriever:
    """Instantiate a registered retriever; ``extra`` overrides the spec's options."""
    from rrbench.registry import resolve

    entry = resolve("retrievers", name)
    extra = validate_options(entry.spec, extra)
    from rrbench.plugin_calls import build

    return build("retrievers", entry.spec, entry.spec, ModelOptions(model_path=model_path, device=device, extra=extra))


__all__ = ["Retriever", "load_retriever"]
