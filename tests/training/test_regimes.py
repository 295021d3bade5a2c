"""Regimes R0-R5: each expands to a valid configuration, flags override it, and the special ones run."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")

from rrbench.components.registry import get_registry  # noqa: E402
from rrbench.training.regimes import resolve_config  # noqa: E402
from rrbench.training.trainer import run_training  # noqa: E402
from rrbench.util.errors import UsageError  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from rrbench.testing import make_train_task
    from rrbench.testing.fixtures import make_tiny_bert

    root = tmp_path_factory.mktemp("regimes")
    return {"task": str(make_train_task(root / "mini")), "bert": str(make_tiny_bert(root / "bert", seed=2)),
            "teacher": str(make_tiny_bert(root / "teacher", seed=9))}


def _tiny(assets, out, **extra):
    return {"task": assets["task"], "base": assets["bert"], "miner": "n0-random", "output": str(out),
            "batch_size": 2, "lr": 1e-3, "negatives": 2, "max_length": 32, "seed": 3, **extra}


def test_every_regime_expands_to_a_valid_config():
    regimes = get_registry().list("regimes")
    ids = {e.id for e in regimes}
    assert {"r0", "r1", "r2", "r3-listnet", "r3-listmle", "r3-plistmle", "r3-lambdaloss", "r4-lambdaloss",
            "r4-plistmle", "r4-ranknet", "r5-mse", "r5-margin-mse", "minilm-scifact"} <= ids
    for entry in regimes:
        config = resolve_config({"output": "unused", "teacher": "t"}, entry.id)
        assert config.regime == entry.id
        assert get_registry().has("losses", config.loss) and get_registry().has("miners", config.miner)
    assert resolve_config({"output": "o"}, "r1").loss == "bce"
    assert resolve_config({"output": "o"}, "R2").loss == "ranknet"
    assert resolve_config({"output": "o"}, "r3-lambdaloss-ndcg1").loss_options == {"weighting_scheme": "ndcg1"}


def test_explicit_flags_override_the_regime():
    config = resolve_config({"output": "o", "lr": 1e-4, "miner": "n1-retriever-hard",
                             "loss_options": {"k": 5}}, "r3-lambdaloss-ndcg2")
    assert (config.lr, config.miner, config.loss) == (1e-4, "n1-retriever-hard", "lambdaloss")
    assert config.loss_options == {"weighting_scheme": "ndcg2", "k": 5}
    with pytest.raises(UsageError, match="--teacher"):
        resolve_config({"output": "o"}, "r5-margin-mse")


def test_r0_trains_nothing_but_calibrates_and_writes_a_checkpoint(assets, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "r0"
    _, summary = run_training(resolve_config(_tiny(assets, out), "r0"), show_progress=False)
    assert summary["phases"] == [] and summary["regime"] == "r0"
    assert "threshold" in summary["threshold_calibration"]
    saved = load_file(out / "model.safetensors")
    base = load_file(f"{assets['bert']}/model.safetensors")
    for key, value in base.items():
        if key in saved:
            torch.testing.assert_close(saved[key], value)


def test_r4_curriculum_warms_up_with_bce_then_switches(assets, tmp_path):
    out = tmp_path / "r4"
    config = resolve_config(_tiny(assets, out, epochs=1, curriculum={"warmup_loss": "bce", "warmup_fraction": 0.5}),
                            "r4-lambdaloss")
    _, summary = run_training(config, show_progress=False)
    warm, main = summary["phases"]
    assert (warm["loss"], main["loss"]) == ("bce", "lambdaloss")
    steps_per_epoch = math.ceil(warm["rows"] / 2)  # batch size 2
    assert warm["steps"] == math.ceil(0.5 * steps_per_epoch)
    assert main["input_format"] == "listwise" and main["steps"] >= 1
    manifest = json.loads((out / "rrbench_model.json").read_text())
    assert manifest["training"]["regime"] == "r4-lambdaloss"


@pytest.mark.parametrize("regime", ["r5-mse", "r5-margin-mse"])
def test_r5_distils_a_teachers_cached_scores(assets, tmp_path, regime):
    from rrbench.pipeline.runner import RunConfig, execute

    cache = tmp_path / "cache"
    execute(RunConfig(reranker=assets["teacher"], task=assets["task"], split="train", top_k_rerank=100,
                      cache_dir=str(cache), output=str(tmp_path / "teacher-run"), show_progress=False))
    config = resolve_config(_tiny(assets, tmp_path / regime, teacher=assets["teacher"], max_steps=3), regime)
    _, summary = run_training(config, show_progress=False, cache_dir=str(cache))
    assert summary["teacher"] == assets["teacher"] and summary["phases"][0]["steps"] == 3
    assert summary["phases"][0]["input_format"].startswith("distill")


def test_r5_without_cached_scores_is_a_usage_error(assets, tmp_path):
    config = resolve_config(_tiny(assets, tmp_path / "r5", teacher=assets["teacher"]), "r5-mse")
    with pytest.raises(UsageError, match="has no cached scores"):
        run_training(config, show_progress=False, cache_dir=str(tmp_path / "empty"))


@pytest.mark.parametrize("regime, flags", [
    ("minilm-scifact", {"lr": 3e-5, "seed": 14, "base": "runs/first-epoch"}),
    ("r3-lambdaloss-ndcg2", {"negatives": 8, "loss_options": {"weighting_scheme": "ndcg1"}}),
    (None, {"include_no_evidence": False, "graded_labels": True, "context_window": 1, "bf16": False}),
])
def test_the_recorded_train_command_trains_the_same_configuration(monkeypatch, regime, flags):
    """Issue 26: records carry the command that obtains a local checkpoint again (reproduce quotes it)."""
    import shlex

    from rrbench.cli import train as train_cli
    from rrbench.training.config import train_command
    from rrbench.training.regimes import resolve_config

    config = resolve_config({**flags, "output": "/home/someone/runs/x"}, regime)
    class Captured(Exception):
        pass

    def capture(cfg, **kw):
        raise Captured(cfg)

    monkeypatch.setattr(train_cli, "train", capture)
    command = train_command(config)
    assert command.startswith("rrbench train") and command.endswith("--output x") and "/home" not in command
    with pytest.raises(Captured) as info:
        train_cli.train_command.main(shlex.split(command)[2:], standalone_mode=False)
    assert info.value.args[0].identity() == config.identity()
