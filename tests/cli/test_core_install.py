"""The first hour after the Quickstart's install (issue 26): a smoke subset of the documented commands runs on the
mini task with only the core install importable, and every missing extra is one line, exit 2, naming the extra and
its pip command. The extras' absence is simulated in-process (tests/support/core_only.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_core_only(commands: list[list[str]], cwd: Path) -> list[dict]:
    spec, out = cwd / "commands.json", cwd / "results.json"
    spec.write_text(json.dumps(commands), encoding="utf-8")
    env = {**os.environ,
           # a module-scoped fixture runs outside the per-test isolation (tests/conftest.py): isolate here
           "RRBENCH_CACHE": str(cwd / "cache"), "RRBENCH_TASKS_DIR": str(cwd / "user-tasks"),
           "RRBENCH_TEST_LEDGER": str(cwd / "test-ledger.jsonl"), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "RRBENCH_LOAD_PLUGINS": "rrbench-sklearn,rrbench-pyserini"}
    # run by path, from a scratch folder: the source tree is not on sys.path, so the installed metadata is what
    # importlib.metadata reads (not a leftover rrbench.egg-info in the checkout)
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "support" / "core_only.py"), str(spec), str(out)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert {"datasets", "onnxruntime", "FlagEmbedding", "psycopg", "accelerate"} <= set(data["blocked"])
    assert not {"optuna", "matplotlib", "torch", "sentence_transformers", "scipy"} & set(data["blocked"])
    return data["results"]


@pytest.fixture(scope="module")
def core_results(tmp_path_factory, tiny_model) -> dict[str, dict]:
    """Every command below in one core-only process (torch is imported once)."""
    from rrbench.testing.fixtures import make_mini_task

    work = tmp_path_factory.mktemp("core-install")
    # registered (records name tasks by id, and compare, gate and reproduce verify against the registered task)
    folder = str(make_mini_task(work / "user-tasks" / "mini-task"))
    mini = "mini-task"
    tiny = str(tiny_model)
    space = work / "space.yaml"
    space.write_text("calibrator: [none, platt]\n", encoding="utf-8")
    named = {
        "help": ["--help"],
        "list": ["list", "rerankers"],
        "plugins": ["plugins"],
        "tasks show": ["tasks", "show", "scifact-evidence"],
        "validate-task": ["validate-task", folder],
        "run bm25": ["run", "--task", mini, "--quiet", "--output", "runs/bm25"],
        "run reranker": ["run", "--task", mini, "--reranker", tiny, "--top-k-rerank", "5", "--threshold", "0.3",
                         "--quiet", "--output", "runs/tiny"],
        "run calibrated": ["run", "--task", mini, "--calibrator", "platt", "--cross-fit", "2", "--quiet",
                           "--output", "runs/platt"],
        "plot reliability": ["plot", "reliability", "runs/platt"],
        "compare": ["compare", "runs/bm25", "runs/tiny"],
        "gate": ["gate", "--baseline", "runs/bm25", "--candidate", "runs/tiny"],
        "evaluate": ["evaluate", "--task", mini, "--run", "runs/bm25/run.trec", "--threshold", "0.5",
                     "--output", "runs/outside"],
        "reproduce": ["reproduce", "runs/tiny", "--quiet"],
        "cache stats": ["cache", "stats"],
        "sweep fill": ["sweep", "fill", "--task", mini, "--reranker", tiny, "--space", str(space), "--quiet"],
        "sweep": ["sweep", "--task", mini, "--reranker", tiny, "--space", str(space), "--trials", "8",
                  # the mini task's few no-evidence queries keep any Wilson bound above 0.5: judge the rate itself
                  "--max-fe", "0.5", "--fe-confidence", "0", "--quiet", "--output", "sweeps/mini"],
        "check retriever": ["check", "bm25", "--kind", "retrievers"],
        "check task": ["check", "--task", "scifact-evidence"],
        # each extra the core install lacks: one line, exit 2, the extra and the pip command
        "extra onnx": ["run", "--task", mini, "--reranker", tiny, "--runtime", "onnx", "--output", "runs/onnx"],
        "extra openvino": ["run", "--task", mini, "--reranker", tiny, "--runtime", "openvino",
                           "--output", "runs/openvino"],
        "extra flag": ["run", "--task", mini, "--reranker", tiny, "--reranker-option", "implementation=flag",
                       "--output", "runs/flag"],
        "extra postgres": ["sweep", "--task", mini, "--trials", "2", "--quiet", "--output", "sweeps/pg",
                           "--storage", "postgresql+psycopg://nobody@127.0.0.1:9/none"],
        "extra hf": ["tasks", "export", mini, "exported-hf"],
        "extra train": ["train", "--task", mini, "--base", tiny, "--output", "runs/train"],
    }
    results = _run_core_only(list(named.values()), work)
    out = {name: result for name, result in zip(named, results, strict=True)}
    out["_work"] = {"path": str(work)}
    return out


SMOKE = ["help", "list", "plugins", "tasks show", "validate-task", "run bm25", "run reranker", "run calibrated",
         "plot reliability", "compare", "gate", "evaluate", "reproduce", "cache stats", "sweep fill", "sweep",
         "check retriever", "check task"]


@pytest.mark.parametrize("name", SMOKE)
def test_documented_command_works_with_the_core_install(core_results, name):
    result = core_results[name]
    assert result["code"] == 0, (result["args"], result["stderr"][-2000:])
    assert "internal error" not in result["stderr"] and "Traceback" not in result["stderr"]
    assert "leaked" not in result, result["leaked"]  # nothing re-imported a blocked module behind our back


def test_the_sweep_writes_its_reports_and_plots_with_the_core_install(core_results):
    work = Path(core_results["_work"]["path"])
    for name in ("best.json", "best.yaml", "pareto.png", "study.sqlite"):
        assert (work / "sweeps" / "mini" / name).is_file(), name


@pytest.mark.parametrize("name, extra", [
    ("extra onnx", "onnx"), ("extra openvino", "openvino"), ("extra flag", "flag"), ("extra postgres", "postgres"),
    ("extra hf", "hf"), ("extra train", "train"),
])
def test_a_missing_extra_is_one_line_naming_it(core_results, name, extra):
    result = core_results[name]
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    assert result["code"] == 2, (result["args"], result["stderr"])
    assert len(lines) == 1, lines
    assert f"pip install 'rrbench[{extra}]'" in lines[0] and f"'{extra}' extra" in lines[0], lines[0]
    assert result["stdout"] == ""


def test_failed_commands_leave_no_output_folder(core_results):
    work = Path(core_results["_work"]["path"])
    for folder in ("runs/onnx", "runs/openvino", "runs/flag", "sweeps/pg", "exported-hf", "runs/train"):
        assert not (work / folder).exists(), folder
