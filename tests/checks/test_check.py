"""``rrbench check``: conformance of a reranker on the built-in mini task."""

from __future__ import annotations

import json

import numpy as np

from rrbench.checks.rerankers import check_reranker as conformance


def test_check_passes_for_a_tiny_cross_encoder(cli, tiny_model):
    result = cli("check", "cross-encoder", "--model-path", str(tiny_model), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and {c["check"] for c in report["checks"]} == {
        "one finite score per candidate", "deterministic", "batch-size invariant", "candidate-order invariant"}


def test_check_fails_an_order_dependent_plugin(rrbench_register, tiny_model):
    """A plugin whose score depends on the pair's position in the batch must fail the order check."""
    from rrbench.components.bases import PointwiseReranker
    from rrbench.components.hookspecs import hookimpl
    from rrbench.components.specs import RerankerSpec

    class PositionDependent(PointwiseReranker):
        def score_pairs(self, queries, documents):
            return np.array([len(d) + i for i, d in enumerate(documents)], dtype=np.float64)

    class Plugin:
        @hookimpl
        def register_rerankers(self, register):
            register(RerankerSpec(id="position-dependent", loader=f"{__name__}:_factory"))

    global _factory

    def _factory(spec, options):
        return PositionDependent(spec, options)

    rrbench_register(Plugin())
    report = conformance("position-dependent")
    verdicts = {c["check"]: c["ok"] for c in report["checks"]}
    assert not report["ok"] and not verdicts["candidate-order invariant"] and verdicts["deterministic"]


def test_check_reports_non_finite_scores_with_exit_code_1(rrbench_register):
    from rrbench.components.bases import PointwiseReranker
    from rrbench.components.hookspecs import hookimpl
    from rrbench.components.specs import RerankerSpec

    class NaNs(PointwiseReranker):
        def score_pairs(self, queries, documents):
            return np.full(len(queries), np.nan)

    global _nan_factory

    def _nan_factory(spec, options):
        return NaNs(spec, options)

    class Plugin:
        @hookimpl
        def register_rerankers(self, register):
            register(RerankerSpec(id="nan-plugin", loader=f"{__name__}:_nan_factory"))

    rrbench_register(Plugin())
    report = conformance("nan-plugin")
    assert not report["ok"] and "non-finite" in report["checks"][0]["detail"]
