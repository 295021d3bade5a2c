"""Building a registered retriever with its options validated against its schema."""

from __future__ import annotations

from typing import Any

from rrbench.components.bases import ModelOptions, Retriever
from rrbench.components.calls import build
from rrbench.components.registry import resolve
from rrbench.components.specs import validate_options


def load_retriever(name: str, model_path: str | None = None, device: str | None = None,
                   **extra: Any) -> Retriever:
    """Instantiate a registered retriever; ``extra`` overrides the spec's options."""

    entry = resolve("retrievers", name)
    extra = validate_options(entry.spec, extra)

    return build("retrievers", entry.spec, entry.spec, ModelOptions(model_path=model_path, device=device, extra=extra))


__all__ = ["Retriever", "load_retriever"]
