"""In-training evaluation and `rrbench run` give the same metrics for the same model (one scoring+metrics path).

The checkpoint selected during training, and the intermediate values Tier B's pruners see, must be the numbers
`rrbench run --reranker CHECKPOINT` reports. A head with all-zero weights scores every sentence the same, so only
tie-breaking decides the ranking: a separate evaluator with its own tie rule would disagree here.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.mark.parametrize("zero_head", [False, True])
@pytest.mark.parametrize("builtin", [False, True])
def test_training_evaluation_equals_rrbench_run(tmp_path, zero_head, builtin):
    from sentence_transformers import CrossEncoder

    from rrbench.pipeline.runner import RunConfig, execute
    from rrbench.tasks.resolve import get_task
    from rrbench.testing import make_train_task
    from rrbench.testing.fixtures import make_tiny_bert
    from rrbench.training.validation import evaluate_model

    task_dir = "scifact-evidence" if builtin else str(make_train_task(tmp_path / "mini"))
    path = make_tiny_bert(tmp_path / "bert", seed=3)
    model = CrossEncoder(str(path), num_labels=1, device="cpu", max_length=64)
    if zero_head:
        with torch.no_grad():
            for name, param in model.model.named_parameters():
                if name.startswith("classifier"):
                    param.zero_()
        model.save_pretrained(str(path))
    task = get_task(task_dir)
    ours = evaluate_model(model, task, "dev_select")
    record = execute(RunConfig(task=task_dir, split="dev_select", reranker=str(path), top_k_rerank=100,
                               max_length=64,
                               output=str(tmp_path / "run"), show_progress=False, use_cache=False))
    for key in ("nDCG@10", "RR@10", "R@10"):
        assert ours[key] == pytest.approx(record["metrics"][key], abs=1e-9), key
