"""Dense (faiss, embedding cache) and SPLADE retrievers on tiny models the tests build, and the model specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rrbench.components.bases import ModelOptions
from rrbench.components.registry import resolve
from rrbench.testing.fixtures import MINI_POSTS, MINI_QUERIES

DOCS = [s for p in MINI_POSTS for s in p["sentences"]]


def _tokenizer(directory: Path):
    """A BERT WordPiece tokenizer over the mini task's words (built from a vocab dict, which transformers 5 needs)."""
    from transformers import BertTokenizerFast

    words = sorted({w.strip(".,").lower() for text in DOCS + [q["text"] for q in MINI_QUERIES] for w in text.split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, ".", ","]
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    assert "[UNK]" not in tokenizer.tokenize(DOCS[0])
    tokenizer.save_pretrained(directory)
    return tokenizer


def _bert_config(tokenizer):
    from transformers import BertConfig

    return BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=128, max_position_embeddings=128)


@pytest.fixture(scope="module")
def tiny_dense(tmp_path_factory) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertModel

    root = tmp_path_factory.mktemp("dense")
    tokenizer = _tokenizer(root / "base")
    torch.manual_seed(0)
    BertModel(_bert_config(tokenizer)).save_pretrained(root / "base")
    word = models.Transformer(str(root / "base"), max_seq_length=64)
    pooling = models.Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(root / "st"))
    return root / "st"


@pytest.fixture(scope="module")
def tiny_splade(tmp_path_factory) -> Path:
    import torch
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling
    from transformers import BertForMaskedLM

    root = tmp_path_factory.mktemp("splade")
    tokenizer = _tokenizer(root / "mlm")
    torch.manual_seed(0)
    BertForMaskedLM(_bert_config(tokenizer)).save_pretrained(root / "mlm")
    encoder = SparseEncoder(modules=[MLMTransformer(str(root / "mlm"), max_seq_length=64),
                                     SpladePooling(pooling_strategy="max")], device="cpu")
    encoder.save(str(root / "splade"))
    return root / "splade"


def _load(name: str, path: Path, **extra):
    entry = resolve("retrievers", name)
    return entry.spec.load()(entry.spec, ModelOptions(model_path=str(path), device="cpu", extra=extra))


def test_dense_exact_faiss_search_matches_brute_force(tiny_dense):
    retriever = _load("minilm-l6", tiny_dense)
    retriever.index(DOCS)
    assert retriever.cache_hit is False
    for query in ("aspirin prevents heart attacks", "caffeine affects sleep"):
        scores = retriever.score_all(query)
        ids, top = retriever.search(query, 5)
        want = np.lexsort((np.arange(len(scores)), -scores))[:5]
        assert ids.tolist() == want.tolist()
        assert top == pytest.approx(scores[want], abs=1e-5)
        subset = np.array([3, 0, 7])
        assert retriever.score(query, subset) == pytest.approx(scores[subset], abs=1e-6)


def test_int8_dense_model_is_quantised_and_close_to_fp32(tiny_dense):
    import torch

    entry = resolve("retrievers", "minilm-l6")
    fp32 = _load("minilm-l6", tiny_dense)
    int8 = entry.spec.load()(entry.spec, ModelOptions(model_path=str(tiny_dense), device="cpu", dtype="int8"))
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in int8.model.modules())
    assert not any(type(m) is torch.nn.Linear for m in int8.model.modules())
    fp32.index(DOCS)
    int8.index(DOCS)
    assert int8.cache_hit is False  # the dtype is part of the embedding-cache key
    query = "aspirin prevents heart attacks"
    a, b = fp32.score_all(query), int8.score_all(query)
    assert np.abs(a - b).max() < 0.1 and not np.allclose(a, b, atol=1e-7)


def test_dense_hnsw_index_finds_the_exact_neighbours_on_a_small_corpus(tiny_dense):
    exact = _load("minilm-l6", tiny_dense)
    approx = _load("minilm-l6-hnsw", tiny_dense)
    exact.index(DOCS)
    approx.index(DOCS)
    assert approx.cache_hit  # same vectors: the index type is not part of the embedding key
    assert type(approx._index()).__name__ == "IndexHNSWFlat"
    query = "vitamin D prevents fractures"
    assert approx.search(query, 3)[0].tolist() == exact.search(query, 3)[0].tolist()


def test_embeddings_are_cached_by_content(tiny_dense):
    first = _load("minilm-l6", tiny_dense)
    first.index(DOCS)
    second = _load("minilm-l6", tiny_dense)
    second.index(DOCS)
    assert second.cache_hit and np.array_equal(first._embeddings, second._embeddings)
    changed = _load("minilm-l6", tiny_dense)
    changed.index(DOCS[:-1] + ["A different last sentence."])
    assert changed.cache_hit is False
    assert np.array_equal(changed._embeddings[:-1], first._embeddings[:-1])


def test_splade_scores_are_the_sparse_dot_products(tiny_splade):
    from sentence_transformers import SparseEncoder

    retriever = _load("splade-cocondenser", tiny_splade)
    retriever.index(DOCS)
    assert retriever.cache_hit is False
    model = SparseEncoder(str(tiny_splade), device="cpu")
    query = "coffee improves memory in mice"
    want = model.similarity(model.encode_query([query]), model.encode_document(DOCS)).to_dense().numpy()[0]
    assert retriever.score_all(query) == pytest.approx(want, rel=1e-4, abs=1e-4)
    assert retriever._docs.nnz < retriever._docs.shape[0] * retriever._docs.shape[1]  # really sparse storage
    ids, top = retriever.search(query, 4)
    assert top == pytest.approx(np.sort(want)[::-1][:4], rel=1e-4, abs=1e-4)
    again = _load("splade-cocondenser", tiny_splade)
    again.index(DOCS)
    assert again.cache_hit and (again._docs != retriever._docs).nnz == 0


def test_qwen3_query_instruction_format():
    from rrbench.retrievers.dense import DenseRetriever

    spec = resolve("retrievers", "qwen3-embed-0.6b").spec
    prompt = DenseRetriever._query_prompt(dict(spec.options))
    assert prompt.startswith("Instruct: Given a claim") and prompt.endswith("\nQuery:")
    assert spec.revision == "b22da495047858cce924d27d76261e96be6febc0"


@pytest.mark.parametrize("name, hub_id", [
    ("qwen3-embed-0.6b", "Qwen/Qwen3-Embedding-0.6B"), ("qwen3-embed-4b", "Qwen/Qwen3-Embedding-4B"),
    ("bge-m3", "BAAI/bge-m3"), ("splade-cocondenser", "naver/splade-cocondenser-ensembledistil"),
])
def test_model_specs_resolve_and_fail_offline_in_one_line(name, hub_id, mini_task, cli):
    spec = resolve("retrievers", name).spec
    assert spec.hub_id == hub_id
    assert (spec.revision is None) == ("unpinned" in spec.description)
    result = cli("candidates", "--task", str(mini_task), "--retriever", name, "--k", "5")
    assert result.returncode == 2
    assert hub_id in result.stderr and len(result.stderr.strip().splitlines()) == 1
