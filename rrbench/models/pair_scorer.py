"""One torch module that turns a padded batch into one score per row, head included.

Every runtime runs (torch) or exports (ONNX Runtime, OpenVINO) this same module, so the three cannot drift apart:
the sequence-classification logit of a one-module CrossEncoder ([CLS] head), or the sentence-transformers module
chain of a checkpoint trained with ``rrbench train --head mean`` (Transformer -> mean Pooling -> Dense), followed by
the score head (log-odds for two-class heads, optional sigmoid). torch is imported on first use, so importing this
module stays cheap.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from rrbench.util.errors import UsageError

if TYPE_CHECKING:
    import torch

#: sentence-transformers module classes a multi-module cross-encoder may chain for the engine to score it
CHAIN_MODULES = {"Transformer", "Pooling", "Dense", "Normalize"}


def head_kind(cross_encoder: Any) -> str:
    """``"cls"`` for a plain sequence-classification model, ``"chain"`` for a supported module chain.

    A chain of other modules (a causal LM's ``LogitScore``, custom code) is refused with one line: only the
    sentence-transformers pipeline knows how to score it (option ``engine: false``).
    """
    modules = list(cross_encoder)
    if len(modules) == 1:
        return "cls"
    names = [type(m).__name__ for m in modules]
    unsupported = [n for n in names if n not in CHAIN_MODULES]
    if unsupported or names[0] != "Transformer":
        raise UsageError(f"the engine cannot score a cross-encoder made of {' -> '.join(names)}; "
                         f"pass --reranker-option engine=false (torch runtime only)")
    return "chain"


def apply_head(logits: torch.Tensor, sigmoid: bool = False) -> torch.Tensor:
    """Two-class heads give the log-odds of the positive class; one-logit heads their logit."""
    import torch  # lazy: torch costs seconds at start-up

    if logits.ndim == 2 and logits.shape[1] == 2:
        logits = logits[:, 1] - logits[:, 0]
    elif logits.ndim == 2:
        logits = logits[:, 0]
    return torch.sigmoid(logits.float()) if sigmoid else logits


@cache
def _pair_scorer_class() -> type:
    import torch  # lazy: torch costs seconds at start-up

    class PairScorer(torch.nn.Module):
        """``(input_ids, attention_mask[, token_type_ids]) -> scores`` (1-D) for a loaded ``CrossEncoder``."""

        def __init__(self, cross_encoder: Any, sigmoid: bool = False) -> None:
            super().__init__()
            self.kind = head_kind(cross_encoder)
            self.cross_encoder = cross_encoder
            self.sigmoid = sigmoid

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                features["token_type_ids"] = token_type_ids
            if self.kind == "cls":
                logits = self.cross_encoder.model(**features).logits
            else:
                logits = self.cross_encoder(features)["scores"]
            return apply_head(logits, self.sigmoid)

    return PairScorer


def pair_scorer(cross_encoder: Any, sigmoid: bool = False) -> torch.nn.Module:
    """The scoring module of a loaded ``CrossEncoder``: ``(input_ids, attention_mask[, token_type_ids]) -> scores``."""
    return _pair_scorer_class()(cross_encoder, sigmoid)
