"""Faults at every call site (issue 26): whatever command calls a plugin -- ``run``, ``sweep``, ``sweep fill``,
``check`` -- a fault is one line on stderr that names the plugin, its distribution and the rule broken, the exit code
is non-zero, and no number is reported. Each case goes through the real console entry point and a real (fake)
installed distribution."""

from __future__ import annotations

from pathlib import Path

import pytest

from rrbench.tasks.mini import make_corpus_task
from rrbench.testing.fixtures import write_fake_plugin

PLUGIN = "plugin 'faults' (distribution rrbench-faults 0.1)"

SOURCE = '''
import numpy as np
from rrbench.plugin import (Calibrator, CalibratorSpec, PointwiseReranker, RerankerSpec, Retriever, RetrieverSpec,
                            hookimpl)


class RaisesOnFit(Calibrator):
    def fit(self, x, y):
        raise RuntimeError("fit exploded")

    def transform(self, x):
        return np.full(len(x), 0.5)


class Decreasing(Calibrator):
    def fit(self, x, y):
        return self

    def transform(self, x):
        return 1.0 / (1.0 + np.exp(np.asarray(x, dtype=float)))  # a falling sigmoid


class NaNs(Decreasing):
    def transform(self, x):
        return np.full(len(x), np.nan)


class AboveOne(Decreasing):
    def transform(self, x):
        return np.full(len(x), 2.0)


class RaisingReranker(PointwiseReranker):
    def score_pairs(self, queries, documents):
        raise RuntimeError("model exploded")


class PinnedNaNReranker(PointwiseReranker):
    """Pinned by cache_fingerprint, so its scores go through the score cache."""

    def cache_fingerprint(self):
        return {"version": 1}

    def score_pairs(self, queries, documents):
        return np.full(len(queries), np.nan)


class Duplicates(Retriever):
    def index(self, documents):
        self.n = len(documents)

    def score_all(self, query):
        return np.arange(self.n, dtype=float)

    def search(self, query, k):
        return np.zeros(k, dtype=np.int64), np.ones(k)


class OutOfCorpus(Duplicates):
    def search(self, query, k):
        return np.arange(k, dtype=np.int64) + self.n, np.ones(k)


@hookimpl
def register_calibrators(register):
    for name, cls in (("raises-fit", "RaisesOnFit"), ("decreasing", "Decreasing"), ("nan-cal", "NaNs"),
                      ("above-one", "AboveOne")):
        register(CalibratorSpec(id=name, loader=f"rrbench_faults:{cls}"))


@hookimpl
def register_rerankers(register):
    register(RerankerSpec(id="raising", loader="rrbench_faults:RaisingReranker"))
    register(RerankerSpec(id="pinned-nan", loader="rrbench_faults:PinnedNaNReranker"))


@hookimpl
def register_retrievers(register):
    register(RetrieverSpec(id="dup-ids", loader="rrbench_faults:Duplicates", score_kind="similarity"))
    register(RetrieverSpec(id="out-of-corpus", loader="rrbench_faults:OutOfCorpus", score_kind="similarity"))
'''


@pytest.fixture(scope="module")
def faults_site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faults-site")
    write_fake_plugin(root, "rrbench-faults", "rrbench_faults", SOURCE, ep_name="faults", version="0.1")
    return root


@pytest.fixture
def run(cli, faults_site):
    env = {"PYTHONPATH": str(faults_site), "RRBENCH_LOAD_PLUGINS": "faults"}
    return lambda *args: cli(*args, env=env)


def _one_line_fault(result, *fragments: str, code: int = 1) -> str:
    """Exit ``code``, nothing on stdout (no numbers), one line on stderr holding the plugin and every fragment."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stdout.strip() == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("rrbench: error: ") and "Traceback" not in result.stderr
    for fragment in (PLUGIN, *fragments):
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.mark.parametrize("calibrator, fragments", [
    ("raises-fit", ("calibrator 'raises-fit'", "fit() raised RuntimeError: fit exploded")),
    ("decreasing", ("calibrator 'decreasing'", "not non-decreasing on the statistics it was fitted on")),
    ("nan-cal", ("calibrator 'nan-cal'", "transform()", "non-finite")),
    ("above-one", ("calibrator 'above-one'", "outside [0, 1]")),
])
def test_run_refuses_a_faulty_calibrator(run, mini_task, tmp_path, calibrator, fragments):
    out = tmp_path / "out"
    result = run("run", "--task", str(mini_task), "--calibrator", calibrator, "--cross-fit", "2", "--quiet",
                 "--output", str(out))
    _one_line_fault(result, *fragments)
    assert not out.exists()


@pytest.mark.parametrize("calibrator, fragment", [
    ("raises-fit", "fit() raised RuntimeError: fit exploded"),
    ("decreasing", "not non-decreasing"),
    ("nan-cal", "non-finite"),
])
def test_sweep_stops_at_a_faulty_calibrator_without_numbers_or_a_folder(run, mini_task, tmp_path, calibrator,
                                                                         fragment):
    space = tmp_path / "space.yaml"
    space.write_text(f"calibrator: [{calibrator}]\nthreshold_mode: [fit]\n", encoding="utf-8")
    out = tmp_path / "sweep"
    result = run("sweep", "--task", str(mini_task), "--space", str(space), "--trials", "5", "--max-fe", "0.5",
                 "--quiet", "--output", str(out))
    _one_line_fault(result, f"calibrator '{calibrator}'", fragment)
    assert not out.exists()  # it failed before its first trial: nothing a resume needs


def test_check_fails_a_calibrator_that_raises(run):
    result = run("check", "raises-fit", "--kind", "calibrators")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{PLUGIN}, calibrator 'raises-fit': fit()/transform() raised RuntimeError" in result.stderr


def test_check_names_a_reranker_that_raises(run):
    result = run("check", "raising")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "[FAIL] one finite score per candidate" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{PLUGIN}, reranker 'raising': score_pairs() raised RuntimeError" in lines[0]


def test_sweep_fill_names_a_reranker_that_raises(cli, faults_site, mini_task, tmp_path):
    """A pinned plugin reranker whose scoring raises: the fill says which plugin broke, in one line."""
    root = tmp_path / "site"
    write_fake_plugin(root, "rrbench-faults", "rrbench_faults", SOURCE.replace(
        "class RaisingReranker(PointwiseReranker):",
        "class RaisingReranker(PointwiseReranker):\n    def cache_fingerprint(self):\n        return {'v': 1}\n"),
        ep_name="faults", version="0.1")
    result = cli("sweep", "fill", "--task", str(mini_task), "--reranker", "raising", "--quiet",
                 env={"PYTHONPATH": str(root), "RRBENCH_LOAD_PLUGINS": "faults"})
    _one_line_fault(result, "reranker 'raising'", "score_pairs() raised RuntimeError: model exploded")


@pytest.mark.parametrize("cache", [True, False])
def test_score_errors_keep_the_plugin_prefix_with_and_without_the_cache(run, mini_task, tmp_path, cache):
    args = ["run", "--task", str(mini_task), "--reranker", "pinned-nan", "--quiet", "--output", str(tmp_path / "o")]
    result = run(*args, *([] if cache else ["--no-cache"]))
    _one_line_fault(result, "reranker 'pinned-nan'", "non-finite score")


@pytest.mark.parametrize("retriever, fragment", [
    ("dup-ids", "returned duplicate ids"),
    ("out-of-corpus", "outside the indexed corpus"),
])
def test_search_faults_say_which_rule_broke_in_run_and_check(run, tmp_path, retriever, fragment):
    task = make_corpus_task(tmp_path / "corpus-task")
    result = run("run", "--task", str(task), "--retriever", retriever, "--quiet", "--output", str(tmp_path / "o"))
    _one_line_fault(result, f"retriever '{retriever}': search() returned", fragment)
    checked = run("check", retriever, "--kind", "retrievers")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "[FAIL] search()" in checked.stdout and fragment in checked.stdout


def test_check_task_checks_a_registered_task(run, cli):
    result = run("check", "--task", "scifact-evidence")
    assert result.returncode == 0, result.stderr
    assert "[ok] spec and data files load" in result.stdout and "dev_select 167" in result.stdout
    unknown = run("check", "--task", "scifact-evidnce")
    assert unknown.returncode == 2 and "Did you mean: scifact-evidence" in unknown.stderr
