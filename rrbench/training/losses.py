"""Loss plugins: thin factories around sentence-transformers' cross-encoder losses.

Each factory takes the CrossEncoder being trained and the loss's options (spec defaults overridden by
``--loss-option``) and returns the ``torch.nn.Module`` the CrossEncoderTrainer calls. We wrap rather than
re-implement so the maths stays the library's (tested upstream); what rrbench adds is the input-format contract,
option validation with one-line errors, and the two generative losses for causal-LM rerankers, which are the
library's losses applied to a yes/no ``LogitScore`` head:

- pointwise yes/no cross-entropy: softmax over the two token logits with the yes-token as target equals a sigmoid
  cross-entropy on ``logit(yes) - logit(no)``, which is exactly what the ``LogitScore`` head returns;
- listwise softmax over a group: cross-entropy over ``[positive, negative_1..n]`` scores divided by a temperature is
  MultipleNegativesRankingLoss with ``scale = 1/temperature``, no activation and no in-batch negatives.
"""

from __future__ import annotations

from typing import Any

from rrbench.util.errors import UsageError, close_matches

#: Input formats and what a row looks like (also documented in docs/training.md).
INPUT_FORMATS = {
    "pointwise": "(query, sentence, label)",
    "listwise": "(query, [sentences], [grades])",
    "grouped": "(query, positive, negative_1..n)",
    "distill-pointwise": "(query, sentence, teacher score)",
    "distill-margin": "(query, positive, negative_1..n, [teacher margins])",
}


def _identity() -> Any:
    import torch  # lazy: torch costs seconds at start-up

    return torch.nn.Identity()


def _number(options: dict[str, Any], key: str, low: float | None = None) -> float:
    value: Any = options.get(key)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"loss option {key} must be a number, got {value!r}") from None
    if low is not None and value <= low:
        raise UsageError(f"loss option {key} must be > {low}, got {value}")
    return value


def _cutoff(options: dict[str, Any]) -> int | None:
    k = options.get("k")
    if k in (None, "", "none", "None"):
        return None
    if int(k) < 1:
        raise UsageError(f"loss option k must be >= 1 or none, got {k}")
    return int(k)


def make_bce(model: Any, pos_weight: float | None = None, **_: Any) -> Any:
    """Sigmoid cross-entropy on raw logits (the checkpoint's scores stay logits: natural threshold 0)."""
    import torch  # lazy: torch costs seconds at start-up
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss  # lazy: heavy: pulls in torch

    weight = None if pos_weight in (None, "", "none") else torch.tensor(float(pos_weight))
    return BinaryCrossEntropyLoss(model, activation_fn=_identity(), pos_weight=weight)


def make_ranknet(model: Any, k: int | None = None, sigma: float = 1.0, **_: Any) -> Any:
    from sentence_transformers.cross_encoder.losses import RankNetLoss  # lazy: heavy: pulls in torch

    return RankNetLoss(model, k=_cutoff({"k": k}), sigma=_number({"sigma": sigma}, "sigma", 0),
                       activation_fn=_identity())


def make_listnet(model: Any, **_: Any) -> Any:
    from sentence_transformers.cross_encoder.losses import ListNetLoss  # lazy: heavy: pulls in torch

    return ListNetLoss(model, activation_fn=_identity())


def make_listmle(model: Any, **_: Any) -> Any:
    from sentence_transformers.cross_encoder.losses import ListMLELoss  # lazy: heavy: pulls in torch

    return ListMLELoss(model, activation_fn=_identity())


def make_plistmle(model: Any, **_: Any) -> Any:
    from sentence_transformers.cross_encoder.losses import PListMLELoss  # lazy: heavy: pulls in torch

    return PListMLELoss(model, activation_fn=_identity())


def lambda_scheme(name: str, mu: float = 10.0) -> Any:
    """The LambdaLoss weighting scheme object for a short name."""
    from sentence_transformers.cross_encoder import losses as L  # lazy: heavy: pulls in torch

    table = {"none": L.NoWeightingScheme, "ndcg1": L.NDCGLoss1Scheme, "ndcg2": L.NDCGLoss2Scheme,
             "lambdarank": L.LambdaRankScheme}
    if name == "ndcg2pp":
        return L.NDCGLoss2PPScheme(mu=float(mu))
    if name not in table:
        raise UsageError(f"unknown LambdaLoss weighting_scheme {name!r}.{close_matches(name, [*table, 'ndcg2pp'])} "
                         f"Choose from {', '.join([*table, 'ndcg2pp'])}")
    return table[name]()


def make_lambdaloss(model: Any, weighting_scheme: str = "ndcg2pp", k: int | None = None, sigma: float = 1.0,
                    mu: float = 10.0, **_: Any) -> Any:
    from sentence_transformers.cross_encoder.losses import LambdaLoss  # lazy: heavy: pulls in torch

    return LambdaLoss(model, weighting_scheme=lambda_scheme(str(weighting_scheme), mu), k=_cutoff({"k": k}),
                      sigma=_number({"sigma": sigma}, "sigma", 0), activation_fn=_identity())


def _group_softmax_class() -> Any:
    """MultipleNegativesRankingLoss that also accepts zero in-batch negatives (upstream samples 0 and crashes)."""
    from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss  # lazy: heavy: pulls in torch

    class GroupSoftmaxLoss(MultipleNegativesRankingLoss):
        def get_in_batch_negatives(self, anchors: Any, candidates: Any) -> Any:
            if self.num_negatives == 0:
                return iter(())
            return super().get_in_batch_negatives(anchors, candidates)

    return GroupSoftmaxLoss


def make_mnrl(model: Any, scale: float = 10.0, num_in_batch_negatives: int | None = 4, **_: Any) -> Any:
    return _group_softmax_class()(model, num_negatives=_in_batch(num_in_batch_negatives),
                                  scale=_number({"scale": scale}, "scale", 0), activation_fn=None)


def make_cmnrl(model: Any, scale: float = 10.0, num_in_batch_negatives: int | None = 4, mini_batch_size: int = 16,
               **_: Any) -> Any:
    # lazy: heavy: pulls in torch
    from sentence_transformers.cross_encoder.losses import CachedMultipleNegativesRankingLoss

    if _in_batch(num_in_batch_negatives) == 0:
        raise UsageError("cmnrl needs in-batch negatives (its point is large batches); use mnrl for groups only")
    return CachedMultipleNegativesRankingLoss(model, num_negatives=_in_batch(num_in_batch_negatives),
                                              scale=_number({"scale": scale}, "scale", 0), activation_fn=None,
                                              mini_batch_size=int(mini_batch_size))


def _in_batch(value: Any) -> int | None:
    if value in (None, "", "none", "None", "all"):
        return None
    if int(value) < 0:
        raise UsageError(f"loss option num_in_batch_negatives must be >= 0, got {value}")
    return int(value)


def make_mse(model: Any, **_: Any) -> Any:
    from sentence_transformers.cross_encoder.losses import MSELoss  # lazy: heavy: pulls in torch

    return MSELoss(model, activation_fn=_identity())


def make_margin_mse(model: Any, **_: Any) -> Any:
    from sentence_transformers.cross_encoder.losses import MarginMSELoss  # lazy: heavy: pulls in torch

    return MarginMSELoss(model, activation_fn=_identity())


def _check_generative(model: Any, positive_token: str, negative_token: str, loss: str) -> None:
    """Generative losses need a causal LM whose head reads exactly the configured yes/no tokens."""
    from sentence_transformers.cross_encoder.modules.logit_score import LogitScore  # lazy: heavy: pulls in torch

    heads = [m for m in model if isinstance(m, LogitScore)]
    if not heads:
        raise UsageError(f"loss {loss} needs a causal-LM reranker (a *ForCausalLM base model); "
                         f"use bce/listwise losses for sequence-classification models")
    tokenizer = model.tokenizer
    want = (token_id(tokenizer, positive_token), token_id(tokenizer, negative_token))
    have = (heads[-1].true_token_id, heads[-1].false_token_id)
    if want != have:
        raise UsageError(f"loss {loss}: the model's yes/no head reads token ids {have}, but positive_token/"
                         f"negative_token {positive_token!r}/{negative_token!r} are {want}; load the base with "
                         f"those tokens (rrbench train does this)")


def token_id(tokenizer: Any, token: str) -> int:
    """The vocabulary id of a single-token string (with or without a leading-space marker)."""
    ids = tokenizer.convert_tokens_to_ids([token])
    if ids and ids[0] is not None and ids[0] != tokenizer.unk_token_id:
        return int(ids[0])
    encoded = tokenizer.encode(token, add_special_tokens=False)
    if len(encoded) != 1:
        raise UsageError(f"token {token!r} is not a single token of this tokenizer ({len(encoded)} pieces)")
    return int(encoded[0])


def make_gen_pointwise(model: Any, positive_token: str = "yes", negative_token: str = "no", **_: Any) -> Any:
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss  # lazy: heavy: pulls in torch

    _check_generative(model, positive_token, negative_token, "gen-pointwise")
    return BinaryCrossEntropyLoss(model, activation_fn=_identity())


def make_gen_listwise(model: Any, positive_token: str = "yes", negative_token: str = "no", temperature: float = 1.0,
                      **_: Any) -> Any:
    _check_generative(model, positive_token, negative_token, "gen-listwise")
    temperature = _number({"temperature": temperature}, "temperature", 0)
    return _group_softmax_class()(model, num_negatives=0, scale=1.0 / temperature, activation_fn=None)


def check_group_size(loss_id: str, options: dict[str, Any], group_size: int) -> None:
    """A listwise or grouped loss needs groups of at least ``min_group_size`` sentences (one positive + negatives)."""
    minimum = options.get("min_group_size")
    if minimum is None:
        return
    if int(minimum) < 2:
        raise UsageError(f"loss option min_group_size must be >= 2, got {minimum}")
    if group_size < int(minimum):
        raise UsageError(f"loss {loss_id} needs groups of at least {int(minimum)} sentences, but the group size "
                         f"is {group_size} (raise --group-size/--negatives or lower min_group_size)")
