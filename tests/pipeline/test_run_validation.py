"""One run validation, in the library: ``rrbench.run()``, sweeps and matrix configurations refuse what the CLI
refuses, and fusion flags follow the registry (a plugin fuser's options and aliases count like a built-in's)."""

from __future__ import annotations

import numpy as np
import pytest

from rrbench.components.registry import registered_plugin
from rrbench.pipeline.runner import RunConfig, component_names
from rrbench.plugin import Fuser, FuserSpec, OptionSpec, hookimpl
from rrbench.util.errors import UsageError


class _PluginFusers:
    @hookimpl
    def register_fusers(self, register):
        register(FuserSpec(id="mean-score", aliases=("average",), loader=f"{__name__}:MeanFuser",
                           option_schema=(OptionSpec("alpha", "float", 0.25, low=0.0, high=1.0),)))


class MeanFuser(Fuser):
    def fuse(self, runs):
        ids = np.unique(np.concatenate([r[0] for r in runs]))
        return ids, np.zeros(len(ids))


@pytest.mark.parametrize("values, message", [
    ({"alpha": 0.3}, "--alpha applies to --fusion weighted only (no --fusion given)"),
    ({"retriever": ("bm25", "minilm-dense"), "fusion": "rrf", "alpha": 0.3},
     "--alpha applies to --fusion weighted only, not --fusion rrf"),
    ({"retriever": ("bm25", "minilm-dense"), "fusion": "weighted", "rrf_k": 10},
     "--rrf-k applies to --fusion rrf only, not --fusion weighted"),
    ({"reranker": "minilm-l6", "top_k_retriever": 10, "top_k_rerank": 50},
     "--top-k-rerank 50 is larger than the candidate pool"),
])
def test_the_library_refuses_what_the_cli_refuses(values, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RunConfig(**values).validate()


def test_flags_given_at_their_default_are_refused_only_when_the_caller_says_so():
    RunConfig(alpha=0.5).validate()  # the library cannot tell a default from a choice
    with pytest.raises(UsageError, match="--alpha applies to"):
        RunConfig(alpha=0.5).validate(explicit={"alpha"})  # the CLI can


def test_a_plugin_fusers_declared_option_and_alias_work_with_the_flags():
    with registered_plugin(_PluginFusers(), "fusers-plugin"):
        config = RunConfig(retriever=("bm25", "minilm-dense"), fusion="average", alpha=0.75)
        config.validate()
        assert config.generator().fusion_options == {"alpha": 0.75}
        assert RunConfig(retriever=("bm25", "minilm-dense"), fusion="average").generator().fusion_options == {}
        with pytest.raises(UsageError, match="--alpha applies to --fusion mean-score or weighted only"):
            RunConfig(alpha=0.75).validate()


def test_one_name_normaliser():
    assert component_names(None) == ()
    assert component_names("none") == ()
    assert component_names("a") == ("a",)
    assert component_names(["a", "b", "a", "none"]) == ("a", "b")
    assert RunConfig(reranker=["x"]).reranker == "x"
    assert RunConfig(reranker=("x", "y")).reranker == ("x", "y")
    assert RunConfig(reranker=()).reranker == "none"
