"""The import paths plugins used before the stage subpackages still work for one minor version, and warn.

A third-party plugin written against the old paths is installed (as a fake distribution) and used through the real
CLI: it must still register, score and write a record, and each old path must say where its names went.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

from rrbench.testing import make_mini_task, write_fake_plugin

OLD_PATHS = {
    "rrbench.specs": ("RerankerSpec", "rrbench.components.specs"),
    "rrbench.registry": ("get_registry", "rrbench.components.registry"),
    "rrbench.decide": ("Calibrator", "rrbench.plugin"),
    "rrbench.fusion": ("Fuser", "rrbench.plugin"),
    "rrbench.runner": ("RunConfig", "rrbench.pipeline.runner"),
    "rrbench.candidates": ("candidate_text", "rrbench.tasks.loader"),
    "rrbench.retrievers.base": ("Retriever", "rrbench.plugin"),
    "rrbench.models.base": ("PairwiseReranker", "rrbench.plugin.PointwiseReranker"),
    "rrbench.training.testing": ("make_train_task", "rrbench.testing"),
}

OLD_STYLE_PLUGIN = '''
import numpy as np
from rrbench import hookimpl
from rrbench.specs import RerankerSpec
from rrbench.models.base import PairwiseReranker


class Overlap(PairwiseReranker):
    def score_pairs(self, queries, documents):
        return np.asarray([len(set(q.split()) & set(d.split())) for q, d in zip(queries, documents)], dtype=float)

    def cache_fingerprint(self):
        return {"algorithm": "old-style-overlap-v1"}


@hookimpl
def register_rerankers(register):
    register(RerankerSpec(id="old-overlap", loader="old_style_plugin:Overlap", backend="custom",
                          score_kind="similarity", max_length=None))
'''


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_each_old_path_forwards_with_a_warning_naming_the_new_place(old):
    name, new = OLD_PATHS[old]
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=f"{old}.{name} is deprecated.*{new}"):
        value = getattr(module, name)
    assert value is not None


def test_an_old_path_does_not_invent_names():
    module = importlib.import_module("rrbench.specs")
    with pytest.raises(AttributeError):
        module.NoSuchThing  # noqa: B018


def test_a_plugin_written_against_the_old_paths_still_runs_and_warns(tmp_path):
    root = write_fake_plugin(tmp_path / "site", "old-style-plugin", "old_style_plugin", OLD_STYLE_PLUGIN,
                             ep_name="oldstyle")
    task = make_mini_task(tmp_path / "mini-task")
    env = {**os.environ, "PYTHONPATH": str(root), "RRBENCH_LOAD_PLUGINS": "oldstyle"}
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-W", "default::DeprecationWarning", "-m", "rrbench.cli", "run",
                             "--task", str(task), "--reranker", "old-overlap", "--output", str(out), "--quiet",
                             "--no-cache"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "rrbench.models.base.PairwiseReranker is deprecated" in result.stderr
    assert "rrbench.specs.RerankerSpec is deprecated" in result.stderr
    record = json.loads((out / "results.json").read_text())
    assert record["config"]["rerankers"][0]["distribution"] == "old-style-plugin"
