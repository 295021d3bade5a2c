"""Memory planning: the estimate against measured peak memory, refusing before loading, and the engine's batch plan."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rrbench.models.engine import InferenceEngine
from rrbench.models.memory import BatchPlan, MemoryModel, MemoryPlanError, check_fits
from rrbench.models.replica import load_replica

#: one fresh process: its peak RSS over its own baseline is the model's (loading, scoring 32 real pairs at batch 16)
MEASURE = r"""
import json, sys
import sentence_transformers, transformers  # imported before the baseline: their memory is not the model's
from rrbench.models.memory import memory_model_for_path
from rrbench.models.replica import load_replica, replica_folder
from rrbench.models.speed import current_rss_bytes, peak_rss_bytes, task_pairs
import torch
torch.set_num_threads(1)
sample = task_pairs("scifact-evidence", "dev_select", 32)
folder = replica_folder(sys.argv[1], texts=sample.texts())
base = current_rss_bytes()
reranker = load_replica(sys.argv[1], texts=sample.texts(), device="cpu", batch_size=16)
reranker.score_pairs(sample.queries, sample.documents)
increase = peak_rss_bytes() - base
model = memory_model_for_path(folder, "float32")
lengths = sorted((len(f["input_ids"]) for f in reranker._encode(reranker._queries(sample.queries), sample.documents)),
                 reverse=True)
activations = max(model.activation_bytes(len(lengths[i:i + 16]), lengths[i]) for i in range(0, len(lengths), 16))
print(json.dumps({"measured": increase, "estimate": model.weight_bytes + activations, "params": model.params}))
"""


@pytest.mark.parametrize("spec_id", ["jina-v2", "mxbai-base-v1"])
def test_estimate_is_within_25_percent_of_the_measured_peak_increase(spec_id, tmp_path):
    out = subprocess.run([sys.executable, "-c", MEASURE, spec_id], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["params"] > 150_000_000  # a replica of a few hundred million parameters, at its real size
    assert abs(result["estimate"] - result["measured"]) <= 0.25 * result["measured"], result


def model(params: int = 100_000_000) -> MemoryModel:
    return MemoryModel(name="reranker big", params=params, linear_params=params // 2, layers=12, hidden=768,
                       intermediate=3072, heads=12, qkv_width=3 * 768, gated=False, dtype="float32")


def test_refusal_names_the_model_the_estimate_and_what_is_free():
    with pytest.raises(MemoryPlanError) as info:
        check_fits(model(8_000_000_000), "cpu", 128, available=24 * 1024 ** 3)
    message = str(info.value)
    assert "\n" not in message
    assert "reranker big needs about 29.8 GiB at float32" in message and "24.0 GiB is available on cpu" in message
    check_fits(model(), "cpu", 128, available=24 * 1024 ** 3)  # 0.4 GiB fits


def test_a_replica_that_cannot_fit_is_refused_before_loading(monkeypatch):
    from rrbench.models import memory

    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 512 * 1024 ** 2)
    import transformers

    def no_load(*args, **kwargs):
        raise AssertionError("weights were loaded despite the memory plan")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_load)
    with pytest.raises(MemoryPlanError, match=r"reranker qwen3-0\.6b needs about .* but 0\.5 GiB is available on cpu"):
        load_replica("qwen3-0.6b", texts=["a query", "a document"], device="cpu")


def test_int8_counts_linear_weights_at_one_byte():
    fp32, int8 = model(), MemoryModel(**{**model().__dict__, "dtype": "int8"})
    assert int8.weight_bytes == fp32.params // 2 + 4 * (fp32.params // 2) < fp32.weight_bytes


def test_engine_batches_never_exceed_the_plan_and_a_row_that_cannot_fit_is_refused():
    mm = model()
    per_row_64 = mm.activation_bytes(1, 64)
    plan = BatchPlan(mm, "cpu", available=0)
    plan.available = int((3.2 * per_row_64 + 256 * 1024 ** 2) / 0.9) + 1  # about 3 rows of 64 tokens fit
    seen: list[int] = []

    def forward(inputs):
        seen.append(int(inputs["input_ids"].shape[0]))
        return inputs["input_ids"].sum(dim=1).double()

    engine = InferenceEngine(forward, pad_token_id=0, batch_size=32, memory_plan=plan)
    features = [{"input_ids": list(range(1, 65))} for _ in range(10)]
    scores = engine.score_features(features)
    assert np.all(scores == sum(range(1, 65)))
    assert max(seen) == 3 and sum(seen) == 10
    assert engine.stats.as_dict()["memory_limited_batches"] == 3  # 3 + 3 + 3, then the last single row
    tight = BatchPlan(mm, "cpu", available=1)
    with pytest.raises(MemoryPlanError, match="one sequence of 64 tokens needs about"):
        InferenceEngine(forward, pad_token_id=0, memory_plan=tight).score_features(features[:1])
