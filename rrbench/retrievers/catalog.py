"""Specs of retrievers beyond the two defaults (bm25, minilm-l6): learned sparse and larger dense models, plus an
approximate-index variant for corpus scale. Only spec objects are built here (no torch import).

Revisions are pinned only where a public record confirms them: the Qwen3-Embedding and bge-m3 revisions are the ones
MTEB's model metadata pins (``mteb/models/model_implementations/qwen3_models.py`` and ``bge_models.py``). The SPLADE
checkpoint has no such record, so it is unpinned (``revision=None``) and says so.
"""

from __future__ import annotations

from typing import Any

from rrbench.components.specs import RetrieverSpec
from rrbench.models.minilm import MINILM_HUB_ID, MINILM_PACKAGE, MINILM_REVISION

#: The instruction rrbench gives instruction-following embedders for evidence retrieval.
EVIDENCE_INSTRUCTION = "Given a claim, retrieve sentences that provide evidence supporting or refuting it"
#: Qwen3-Embedding's query format (queries only; documents get no prefix), as in its model card and MTEB's wrapper.
QWEN3_QUERY_TEMPLATE = "Instruct: {instruction}\nQuery:"


def register_more_retrievers(register: Any) -> None:
    """Register further RetrieverSpecs."""
    register(RetrieverSpec(
        id="minilm-l6-hnsw", loader="rrbench.retrievers.dense:DenseRetriever",
        description="all-MiniLM-L6-v2 with an approximate faiss HNSW index (corpus scale); same vectors as minilm-l6",
        hub_id=MINILM_HUB_ID, revision=MINILM_REVISION, license="apache-2.0", params="22.7M",
        packaged_weights=MINILM_PACKAGE,
        options={"batch_size": 64, "normalize": True, "index": "HNSW32", "ef_search": 128}, score_kind="cosine",
    ))
    register(RetrieverSpec(
        id="qwen3-embed-0.6b", aliases=("Qwen3-Embedding-0.6B",), loader="rrbench.retrievers.dense:DenseRetriever",
        description="Qwen3-Embedding-0.6B bi-encoder with its query instruction format; revision pinned as in MTEB",
        hub_id="Qwen/Qwen3-Embedding-0.6B", revision="b22da495047858cce924d27d76261e96be6febc0",
        license="apache-2.0", params="0.6B",
        options={"batch_size": 16, "normalize": True, "max_length": 512, "query_instruction": EVIDENCE_INSTRUCTION,
                 "query_template": QWEN3_QUERY_TEMPLATE},
        score_kind="cosine",
    ))
    register(RetrieverSpec(
        id="qwen3-embed-4b", aliases=("Qwen3-Embedding-4B",), loader="rrbench.retrievers.dense:DenseRetriever",
        description="Qwen3-Embedding-4B bi-encoder with its query instruction format; revision pinned as in MTEB",
        hub_id="Qwen/Qwen3-Embedding-4B", revision="636cd9bf47d976946cdbb2b0c3ca0cb2f8eea5ff",
        license="apache-2.0", params="4B",
        options={"batch_size": 8, "normalize": True, "max_length": 512, "query_instruction": EVIDENCE_INSTRUCTION,
                 "query_template": QWEN3_QUERY_TEMPLATE},
        score_kind="cosine",
    ))
    register(RetrieverSpec(
        id="bge-m3", aliases=("BAAI/bge-m3-dense",), loader="rrbench.retrievers.dense:DenseRetriever",
        description="BGE-M3 dense vectors (no instruction); revision pinned as in MTEB",
        hub_id="BAAI/bge-m3", revision="5617a9f61b028005a4858fdac845db406aefb181", license="mit", params="568M",
        options={"batch_size": 16, "normalize": True, "max_length": 512}, score_kind="cosine",
    ))
    register(RetrieverSpec(
        id="splade-cocondenser", aliases=("splade-cocondenser-ensembledistil", "splade-pp-ed"),
        loader="rrbench.retrievers.splade:SpladeRetriever",
        description="SPLADE++ CoCondenser-EnsembleDistil learned sparse retrieval via sentence-transformers "
                    "SparseEncoder (unpinned: no verifiable revision record; CC BY-NC-SA 4.0 per the model card)",
        hub_id="naver/splade-cocondenser-ensembledistil", revision=None, license="cc-by-nc-sa-4.0", params="110M",
        options={"batch_size": 32, "max_length": 256}, score_kind="similarity",
    ))
