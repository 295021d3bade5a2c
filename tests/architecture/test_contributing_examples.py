"""CONTRIBUTING.md's plugin example runs as written: every ``file=`` block is extracted, installed into one shared
throwaway environment, and each component passes ``rrbench check`` (documentation that rots fails CI)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```(\w+) file=(\S+)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def contributing_files() -> dict[str, str]:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    return {name: body for _, name, body in BLOCK.findall(text)}


@pytest.fixture(scope="module")
def example_env(plugin_env, tmp_path_factory):
    env = plugin_env
    package = tmp_path_factory.mktemp("example")
    for name, body in contributing_files().items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(body, encoding="utf-8")
    env.run("build_task.py", cwd=package, check=True)
    env.install(package)
    return env


def test_the_example_covers_every_kind_and_installs_cleanly(example_env):
    files = contributing_files()
    assert {"pyproject.toml", "rrbench_example/__init__.py", "build_task.py"} <= set(files)
    result = example_env.rrbench("plugins", "--json", check=True)
    data = json.loads(result.stdout)
    example = next(p for p in data["plugins"] if p["name"] == "example")
    assert example["status"] == "ok" and example["problems"] == [], example
    assert example["distribution"] == "rrbench-example" and example["version"] == "0.1.0"
    assert set(example["components"]) == {"rerankers", "retrievers", "fusers", "tasks", "losses", "miners", "regimes",
                                          "calibrators"}
    assert result.stderr == ""


@pytest.mark.parametrize("args", [
    ("check", "overlap"),
    ("check", "overlap-retriever", "--kind", "retrievers", "--option", "lowercase=false"),
    ("check", "best-rank", "--kind", "fusers"),
    ("check", "last-sentences", "--kind", "miners"),
    ("check", "smoothed-bce", "--kind", "losses"),
    ("check", "example-recipe", "--kind", "regimes"),
    ("check", "rank-share", "--kind", "calibrators"),
    ("validate-task", "tiny-claims"),
])
def test_each_documented_component_passes_its_check(example_env, args):
    if args[0] == "validate-task":
        path = json.loads(example_env.rrbench("tasks", "show", "tiny-claims", "--json", check=True).stdout)["path"]
        args = ("validate-task", path)
    result = example_env.rrbench(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout


def test_the_documented_run_and_command_work(example_env, tmp_path):
    result = example_env.rrbench("run", "--task", "tiny-claims", "--split", "dev_select", "--retriever",
                                 "example:overlap-retriever", "--reranker", "overlap", "--threshold", "0.5",
                                 "--quiet", "--no-cache", "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert record["config"]["rerankers"][0]["distribution"] == "rrbench-example"
    hello = example_env.rrbench("example-hello", "docs")
    assert hello.returncode == 0 and hello.stdout.strip() == "hello docs from rrbench-example"
