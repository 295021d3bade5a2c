"""The reranker zoo: specs of the hub rerankers from the research plan (section 4 / table 16.1). Specs only: no torch.

Revisions are pinned only where they could be verified (MTEB's model metadata, ``mteb/models/model_implementations/``
``rerankers_custom.py`` and ``mxbai_models.py``); every other spec says "unpinned" in its description and has
``revision=None``, so a result record shows that the weights may change under it.

The backend is declared, never guessed from the id:

- ``cross-encoder``: sentence-transformers ``CrossEncoder`` loading, scored by rrbench's engine
  (:mod:`rrbench.models.engine`); option ``implementation: flag`` switches bge-v2-m3 to FlagEmbedding's ``FlagReranker``.
- ``flag-lightweight``: FlagEmbedding ``LightWeightFlagLLMReranker`` (layer cut-off and token compression knobs).
- ``generative``: a causal LM answering yes/no (Qwen3) or 1/0 (mxbai-v2); score from the last-token logits.
- ``listwise``: jina-reranker-v3, many candidates per forward pass (:class:`rrbench.components.bases.ListwiseReranker`).
"""

from __future__ import annotations

from typing import Any

from rrbench.components.specs import RerankerSpec
from rrbench.models.prompts import MXBAI_V2, QWEN3

CROSS = "rrbench.models.cross_encoder:CrossEncoderReranker"
GENERATIVE = "rrbench.models.generative:GenerativeReranker"
LIGHTWEIGHT = "rrbench.models.flag:LightweightLLMReranker"
LISTWISE = "rrbench.models.listwise:JinaListwiseReranker"

_MTEB = "revision from MTEB model metadata"


def zoo_specs() -> list[RerankerSpec]:
    """All zoo specs, in the order of the research plan's table."""
    specs = [
        RerankerSpec(
            id="bge-v2-m3", aliases=("bge-reranker-v2-m3",), loader=CROSS,
            description=f"BAAI bge-reranker-v2-m3, XLM-R cross-encoder, raw logit ({_MTEB}); "
                        "option implementation=flag uses FlagEmbedding's FlagReranker",
            hub_id="BAAI/bge-reranker-v2-m3", revision="953dc6f6f85a1b2dbfca4c34a2796e7dde08d41e",
            license="apache-2.0", params="568M", backend="cross-encoder", score_kind="logit",
            interaction="pointwise", max_length=512, options={"implementation": "sentence-transformers"},
        ),
        RerankerSpec(
            id="bge-gemma2-lightweight", aliases=("bge-reranker-v2.5-gemma2-lightweight",), loader=LIGHTWEIGHT,
            description="BAAI bge-reranker-v2.5-gemma2-lightweight via FlagEmbedding LightWeightFlagLLMReranker "
                        "(unpinned); knobs cutoff_layers, compress_ratio, compress_layers",
            hub_id="BAAI/bge-reranker-v2.5-gemma2-lightweight", revision=None, license="gemma", params="9.24B",
            backend="flag-lightweight", score_kind="logit", interaction="pointwise", max_length=512,
            instruction="Predict whether passage B contains an answer to query A.",
            options={"cutoff_layers": [28], "compress_ratio": 2, "compress_layers": [24, 40]},
        ),
        RerankerSpec(
            id="jina-v2", aliases=("jina-reranker-v2", "jina-reranker-v2-base-multilingual"), loader=CROSS,
            description=f"jina-reranker-v2-base-multilingual cross-encoder ({_MTEB}); needs --trust-remote-code "
                        "(its XLM-R flash variant ships as repository code); plumbing tested on a local XLM-R",
            hub_id="jinaai/jina-reranker-v2-base-multilingual", revision="126747772a932960028d9f4dc93bd5d9c4869be4",
            license="cc-by-nc-4.0", params="278M", backend="cross-encoder", score_kind="logit",
            interaction="pointwise", max_length=1024, requires_remote_code=True,
        ),
        RerankerSpec(
            id="jina-v3", aliases=("jina-reranker-v3",), loader=LISTWISE,
            description="jina-reranker-v3 listwise (Qwen3-0.6B, 'last but not late' interaction), many candidates per "
                        "forward (unpinned); knobs group_size 16/32/64, packing; needs --trust-remote-code; plumbing "
                        "tested on a local tiny listwise model with the same rerank() interface",
            hub_id="jinaai/jina-reranker-v3", revision=None, license="cc-by-nc-4.0", params="0.6B",
            backend="listwise", score_kind="cosine", interaction="listwise", max_length=8192,
            requires_remote_code=True, options={"group_size": 32, "packing": "sequential"},
        ),
    ]
    for size, rev, params in (("base", "800f24c113213a187e65bde9db00c15a2bb12738", "184M"),
                              ("large", "98f655841d5caf0b16eaff79c2b4ca109d920d17", "435M")):
        specs.append(RerankerSpec(
            id=f"mxbai-{size}-v1", aliases=(f"mxbai-rerank-{size}-v1",), loader=CROSS,
            description=f"mixedbread mxbai-rerank-{size}-v1, DeBERTa-v3 cross-encoder, raw logit ({_MTEB})",
            hub_id=f"mixedbread-ai/mxbai-rerank-{size}-v1", revision=rev, license="apache-2.0", params=params,
            backend="cross-encoder", score_kind="logit", interaction="pointwise", max_length=512,
        ))
    for size, params in (("base", "0.5B"), ("large", "1.5B")):
        specs.append(RerankerSpec(
            id=f"mxbai-{size}-v2", aliases=(f"mxbai-rerank-{size}-v2",), loader=GENERATIVE,
            description=f"mixedbread mxbai-rerank-{size}-v2, Qwen2 causal LM with its own prompt; score "
                        "logit('1') - logit('0') at the last token (unpinned)",
            hub_id=f"mixedbread-ai/mxbai-rerank-{size}-v2", revision=None, license="apache-2.0", params=params,
            backend="generative", score_kind="log-odds", interaction="pointwise", max_length=8192,
            instruction=None, options={"prompt_format": MXBAI_V2.name},
        ))
    for size in ("0.6B", "4B", "8B"):
        specs.append(RerankerSpec(
            id=f"qwen3-{size.lower()}", aliases=(f"qwen3-reranker-{size.lower()}",), loader=GENERATIVE,
            description=f"Qwen3-Reranker-{size}, instruction-aware yes/no causal LM (official prompt); score "
                        "P(yes) from the last-token yes/no logits (unpinned)",
            hub_id=f"Qwen/Qwen3-Reranker-{size}", revision=None, license="apache-2.0", params=size,
            backend="generative", score_kind="probability", interaction="pointwise", max_length=8192,
            instruction=QWEN3.instructions["web-search"], options={"prompt_format": QWEN3.name},
        ))
    specs += [
        RerankerSpec(
            id="minilm-l12", aliases=("ms-marco-minilm", "ms-marco-MiniLM-L-12-v2", "cross-encoder/ms-marco-MiniLM-L12-v2"),
            loader=CROSS,
            description="cross-encoder/ms-marco-MiniLM-L-12-v2, raw logit (revision from MTEB metadata of the "
                        "same repository under its current name ms-marco-MiniLM-L12-v2)",
            hub_id="cross-encoder/ms-marco-MiniLM-L-12-v2", revision="7b0235231ca2674cb8ca8f022859a6eba2b1c968",
            license="apache-2.0", params="33.4M", backend="cross-encoder", score_kind="logit",
            interaction="pointwise", max_length=512,
        ),
        RerankerSpec(
            id="gte-modernbert", aliases=("gte-reranker-modernbert-base",), loader=CROSS,
            description="Alibaba-NLP gte-reranker-modernbert-base, ModernBERT cross-encoder, raw logit (unpinned)",
            hub_id="Alibaba-NLP/gte-reranker-modernbert-base", revision=None, license="apache-2.0", params="149M",
            backend="cross-encoder", score_kind="logit", interaction="pointwise", max_length=8192,
        ),
    ]
    return specs


def register_zoo(register: Any) -> None:
    """Register the zoo's RerankerSpecs through the same ``register`` callable plugins get."""
    for spec in zoo_specs():
        register(spec)
