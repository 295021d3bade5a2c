"""The inference engine: equal to a plain per-pair loop for every batch size, de-duplication, OOM handling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rrbench.models.engine import InferenceEngine, RerankerOOMError, is_oom
from rrbench.models.factory import load_reranker
from rrbench.util.errors import UsageError

QUERIES = ["aspirin prevents heart attacks", "caffeine affects sleep", "aspirin prevents heart attacks",
           "exercise improves mood", "caffeine affects sleep", "vitamin D prevents fractures"]
DOCS = ["Aspirin reduces the risk of heart attack in adults.", "Tea was not studied.",
        "Aspirin reduces the risk of heart attack in adults.", "Walking for thirty minutes a day was enough.",
        "Sleep quality decreased with late caffeine intake and the cohort included students only.",
        "Bone density was measured with a scanner."]


@pytest.fixture(scope="module")
def reference(tiny_model):
    """Scores from a plain per-pair loop over the HF model (no batching, no padding)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model).eval()
    with torch.inference_mode():
        return np.array([float(model(**tok(q, d, return_tensors="pt")).logits[0, 0]) for q, d in zip(QUERIES, DOCS)])


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4, 5, 6, 64])
def test_engine_equals_a_per_pair_loop_for_every_batch_size(tiny_model, reference, batch_size):
    reranker = load_reranker("cross-encoder", model_path=str(tiny_model), batch_size=batch_size, device="cpu")
    np.testing.assert_allclose(reranker.score_pairs(QUERIES, DOCS), reference, atol=1e-5)
    stats = reranker.engine.stats
    assert stats.unique_pairs == 5 and stats.pairs == 6  # the repeated (query, sentence) pair is scored once


def test_token_budget_and_no_sorting_give_the_same_scores(tiny_model, reference):
    reranker = load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu", token_budget=40)
    np.testing.assert_allclose(reranker.score_pairs(QUERIES, DOCS), reference, atol=1e-5)
    assert reranker.engine.stats.batches >= 2


def test_bf16_and_int8_stay_close_to_fp32(tiny_model, reference):
    for dtype, tol in (("bfloat16", 5e-2), ("int8", 5e-2)):
        reranker = load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu", dtype=dtype)
        scores = reranker.score_pairs(QUERIES, DOCS)
        np.testing.assert_allclose(scores, reference, atol=tol)
        assert not np.allclose(scores, reference, atol=1e-6), f"{dtype} gave fp32's exact scores: not applied"


def test_int8_quantises_the_linear_layers_that_scoring_calls(tiny_model):
    import torch

    reranker = load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu", dtype="int8")
    linears = [m for m in reranker.model.model.modules() if type(m) is torch.nn.Linear]
    quantised = [m for m in reranker.model.model.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert quantised and not linears


def _fake_oom_forward(limit: int, calls: list[int]):
    """A real computation (sum of token ids) that raises torch's OOM error for batches above ``limit`` rows."""
    import torch

    def forward(inputs):
        rows = inputs["input_ids"].shape[0]
        calls.append(rows)
        if rows > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return (inputs["input_ids"] * inputs["attention_mask"]).sum(dim=1).float()

    return forward


def _features(n: int):
    return [{"input_ids": list(range(1, 2 + i % 5))} for i in range(n)]


def test_oom_halves_the_batch_and_retries():
    calls: list[int] = []
    engine = InferenceEngine(_fake_oom_forward(3, calls), pad_token_id=0, batch_size=16)
    feats = _features(10)
    scores = engine.score_features(feats)
    np.testing.assert_array_equal(scores, [sum(f["input_ids"]) for f in feats])
    assert calls[0] == 10 and max(calls[1:]) <= 5 and engine.stats.oom_retries >= 2
    assert engine.batch_size <= 3


def test_oom_replans_the_later_batches_at_the_smaller_size():
    """48 rows in 3 planned batches of 16, room for 3: 16 -> 8 -> 4 -> 2 is 3 retries, then every batch has 2 rows."""
    calls: list[int] = []
    engine = InferenceEngine(_fake_oom_forward(3, calls), pad_token_id=0, batch_size=16)
    feats = _features(48)
    np.testing.assert_array_equal(engine.score_features(feats), [sum(f["input_ids"]) for f in feats])
    assert engine.stats.oom_retries == 3
    assert calls[:3] == [16, 8, 4] and set(calls[3:]) == {2} and sum(calls[3:]) == 48
    calls.clear()  # a later call starts at the size that fitted
    engine.score_features(feats)
    assert engine.stats.oom_retries == 3 and set(calls) == {2}


def test_oom_on_a_single_sequence_stops_with_a_clear_message():
    engine = InferenceEngine(_fake_oom_forward(0, []), pad_token_id=0, batch_size=4, name="reranker 'x'")
    with pytest.raises(RerankerOOMError, match=r"reranker 'x' ran out of memory .*--on-oom fallback"):
        engine.score_features(_features(4))


def test_other_errors_are_not_mistaken_for_oom():
    def broken(inputs):
        raise ValueError("shape mismatch")

    with pytest.raises(ValueError, match="shape mismatch"):
        InferenceEngine(broken, pad_token_id=0).score_features(_features(3))
    assert is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB"))
    assert not is_oom(RuntimeError("expected scalar type Float"))


def test_bad_engine_settings_are_usage_errors():
    with pytest.raises(UsageError, match="batch size"):
        InferenceEngine(lambda x: x, pad_token_id=0, batch_size=0)


def _oom_always(monkeypatch):
    import torch

    from rrbench.models.cross_encoder import CrossEncoderReranker

    def forward(self, inputs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(CrossEncoderReranker, "_forward", forward)


def test_runner_stops_on_oom_by_default(tiny_model, mini_task, tmp_path, monkeypatch):
    from rrbench.pipeline.runner import RunConfig, execute

    _oom_always(monkeypatch)
    config = RunConfig(task=str(mini_task), reranker="cross-encoder", model_path=str(tiny_model),
                       output=str(tmp_path / "out"), show_progress=False, use_cache=False)
    with pytest.raises(RerankerOOMError):
        execute(config)
    assert not (tmp_path / "out").exists()


def test_runner_falls_back_to_the_retriever_only_when_asked(tiny_model, mini_task, tmp_path, monkeypatch):
    from rrbench.pipeline.runner import RunConfig, execute

    _oom_always(monkeypatch)
    config = RunConfig(task=str(mini_task), reranker="cross-encoder", model_path=str(tiny_model),
                       output=str(tmp_path / "out"), show_progress=False, use_cache=False, on_oom="fallback")
    with pytest.warns(RuntimeWarning, match="fallback"):
        record = execute(config)
    fallback = json.loads((tmp_path / "out" / "results.json").read_text())["provenance"]["run_options"]["reranker_fallback"]
    assert fallback["used"] == "retriever ranking" and "out of memory" in fallback["reason"]
    plain = execute(RunConfig(task=str(mini_task), output=str(tmp_path / "plain"), show_progress=False,
                              use_cache=False))
    assert record["metrics"]["nDCG@10"] == plain["metrics"]["nDCG@10"]


def test_bf16_warns_once_where_it_would_be_emulated_and_never_where_it_is_native(monkeypatch):
    import warnings

    from rrbench.models import loading
    monkeypatch.setattr(loading, "_warned_emulated", set())
    monkeypatch.setattr(loading, "bf16_is_native", lambda device: False)
    with pytest.warns(UserWarning, match="bf16 is emulated on this cpu"):
        loading.torch_dtype("bfloat16", "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loading.torch_dtype("bfloat16", "cpu")  # once per device
        loading.torch_dtype("float32", "cuda")
        monkeypatch.setattr(loading, "bf16_is_native", lambda device: True)
        loading.torch_dtype("bfloat16", "cuda")


def test_max_length_is_clipped_to_the_models_positions(tmp_path):
    """Issue 26: a tiny cross-encoder (128 positions) whose tokenizer claims 512 crashed on a 193-token pair
    ("size of tensor a (193) must match ... (128)"); every backend now clips to what the config allows."""
    from transformers import AutoConfig

    from rrbench.models.factory import load_reranker
    from rrbench.models.loading import clipped_max_length, position_limit
    from rrbench.testing.fixtures import make_tiny_bert, make_tiny_causal_lm

    bert = make_tiny_bert(tmp_path / "bert")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a folder's default length is clipped silently; only a request warns
        reranker = load_reranker(str(bert))
    assert reranker.token_limit == 128 and reranker.model.max_seq_length == 128
    assert reranker.max_length == 512  # what was asked for (the spec): the score fingerprint, computed unloaded
    from rrbench.components.identity import model_fingerprint

    assert model_fingerprint(reranker)[0] == model_fingerprint(load_reranker(str(bert), deferred=True))[0]
    long_pair = (["aspirin " * 150], ["heart attack " * 60])
    assert np.isfinite(reranker.score_pairs(*long_pair)).all()
    with pytest.warns(UserWarning, match="max length 512 exceeds the model's 128 positions"):
        assert load_reranker(str(bert), max_length=512).token_limit == 128
    assert load_reranker(str(bert), max_length=64).token_limit == 64  # shorter requests stand
    # RoBERTa's family loses the padding offset; a model without position embeddings is not clipped
    roberta = AutoConfig.for_model("xlm-roberta", max_position_embeddings=514, pad_token_id=1)
    assert position_limit(roberta) == 512 and clipped_max_length(None, 10**30, roberta, "x") == 512
    assert clipped_max_length(300, None, object(), "x") == 300
    lm = load_reranker("qwen3-0.6b", model_path=str(make_tiny_causal_lm(tmp_path / "lm")))
    assert lm.token_limit == 128 and np.isfinite(lm.score_pairs(*long_pair)).all()
