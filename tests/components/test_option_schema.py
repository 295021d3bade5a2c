"""The option schema declared on specs: coercion, ranges, choices, close-match suggestions, built-in declarations."""

from __future__ import annotations

import pytest

from rrbench.components.registry import get_registry
from rrbench.components.specs import FuserSpec, LossSpec, OptionSpec, validate_options
from rrbench.util.errors import UsageError

SCHEMA = (
    OptionSpec("k0", "float", 60.0, low=1.0, high=1000.0, log=True),
    OptionSpec("depth", "int", None, low=1, high=10),
    OptionSpec("norm", "str", "minmax", choices=("minmax", "zscore")),
    OptionSpec("flag", "bool", False),
)
SPEC = FuserSpec(id="demo", loader="x:y", option_schema=SCHEMA)


def test_defaults_come_from_the_schema():
    assert SPEC.options == {"k0": 60.0, "depth": None, "norm": "minmax", "flag": False}
    assert validate_options(SPEC, {}) == SPEC.options


def test_command_line_strings_are_coerced():
    out = validate_options(SPEC, {"k0": "20", "depth": "3", "norm": "zscore", "flag": "yes"})
    assert out == {"k0": 20.0, "depth": 3, "norm": "zscore", "flag": True}
    assert isinstance(out["depth"], int) and isinstance(out["k0"], float)
    assert validate_options(SPEC, {"depth": "none"})["depth"] is None


@pytest.mark.parametrize("given, fragment", [
    ({"k0": 0.5}, "option 'k0' must be within [1, 1000], got 0.5"),
    ({"k0": "nan"}, "option 'k0' must be a finite number"),
    ({"depth": 2.5}, "option 'depth' must be an integer"),
    ({"depth": True}, "option 'depth' must be an integer"),
    ({"norm": "softmax"}, "option 'norm' must be one of minmax, zscore"),
    ({"flag": "maybe"}, "option 'flag' must be true or false"),
    ({"k0": None}, "option 'k0' needs a float value"),
    ({"nrom": "rank"}, "has no option 'nrom' (options: depth, flag, k0, norm). Did you mean: norm?"),
])
def test_bad_values_are_one_line_usage_errors_naming_the_component(given, fragment):
    with pytest.raises(UsageError) as info:
        validate_options(SPEC, given)
    message = str(info.value)
    assert message.startswith("fuser 'demo'") and fragment in message and "\n" not in message


def test_specs_without_schema_keep_their_plain_options():
    spec = LossSpec(id="plain", loader="x:y", options={"scale": 2})
    assert validate_options(spec, {"scale": "anything"}) == {"scale": "anything"}
    with pytest.raises(UsageError, match="Did you mean: scale"):
        validate_options(spec, {"scael": 3})


@pytest.mark.parametrize("kwargs, fragment", [
    ({"type": "list"}, "type must be one of"),
    ({"low": 5, "high": 1}, "low 5 > high 1"),
    ({"log": True, "low": 0}, "log=True needs low > 0"),
    ({"default": 100, "high": 10}, "must be within"),
    ({"type": "str", "low": 1, "default": "a"}, "low/high apply to int and float"),
])
def test_malformed_declarations_are_refused(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        OptionSpec(**{"name": "x", "type": "int", "default": 1, **kwargs})


def test_options_outside_the_schema_are_refused_at_declaration():
    with pytest.raises(ValueError, match="not declared in option_schema"):
        FuserSpec(id="bad", loader="x:y", options={"k1": 1}, option_schema=SCHEMA)


@pytest.mark.parametrize("kind, name, option, check", [
    ("fusers", "rrf", "k0", lambda o: o.low > 0 and o.log and o.searchable),
    ("fusers", "weighted", "alpha", lambda o: (o.low, o.high) == (0.0, 1.0)),
    ("fusers", "weighted", "norm", lambda o: o.choices == ("minmax", "zscore", "rank")),
    ("losses", "lambdaloss", "weighting_scheme", lambda o: "ndcg2pp" in o.choices and o.default == "ndcg2pp"),
    ("losses", "lambdaloss", "k", lambda o: o.type == "int" and o.default is None),
    ("losses", "mnrl", "scale", lambda o: o.log and o.default == 10.0),
    ("retrievers", "bm25", "k1", lambda o: o.type == "float" and o.searchable),
    ("miners", "n3-mixed", "hard_fraction", lambda o: (o.low, o.high) == (0.0, 1.0)),
])
def test_builtins_declare_searchable_options(kind, name, option, check):
    spec = get_registry().get(kind, name).spec
    declared = spec.option(option)
    assert declared is not None and check(declared)
    # every declared searchable number has a finite range a sampler can use
    for o in spec.option_schema:
        if o.searchable and o.type in ("int", "float") and o.choices is None:
            assert o.low is not None and o.high is not None, (name, o.name)


def test_retriever_and_fusion_options_reach_the_components_and_the_record(mini_task, tmp_path):
    from rrbench.pipeline.runner import RunConfig, execute

    def run(name, **kwargs):
        kwargs.setdefault("retriever", "bm25")
        config = RunConfig(task=str(mini_task), top_k_retriever=5, output=str(tmp_path / name),
                           show_progress=False, use_cache=False, **kwargs)
        return execute(config)

    default = run("default")
    tuned = run("tuned", retriever_options={"k1": "0", "b": 0.2})
    retriever = tuned["config"]["generator"]["retrievers"][0]
    assert retriever["options"]["k1"] == 0.0 and retriever["options"]["b"] == 0.2
    assert default["config"]["generator"]["retrievers"][0]["options"]["k1"] == 1.5
    assert "--retriever-option k1=0" in tuned["provenance"]["command"]
    assert "--retriever-option" not in default["provenance"]["command"]
    assert tuned["config_hash"] != default["config_hash"]

    fused = run("fused", retriever=("bm25", "minilm-l6"),
                fusion="rrf", fusion_options={"k0": "5"}, retriever_options={"bm25:k1": 1.0})
    generator = fused["config"]["generator"]
    assert generator["fusion"]["options"] == {"k0": 5.0}
    assert generator["retrievers"][0]["options"]["k1"] == 1.0
    assert "--fusion-option k0=5" in fused["provenance"]["command"]


@pytest.mark.parametrize("args, fragment", [
    (("--retriever-option", "k2=1"), "retriever 'bm25' has no option 'k2' (options: b, idf_scope, k1, method, "
                                     "stemmer, stopwords). Did you mean: k1?"),
    (("--retriever-option", "method=okapi"), "option 'method' must be one of lucene"),
    (("--retriever", "minilm-l6", "--fusion", "rrf", "--retriever-option", "k1=1"), "say which one"),
    (("--retriever", "minilm-l6", "--fusion", "rrf", "--fusion-option", "k=3"), "Did you mean: k0?"),
    (("--retriever-option", "novalue"), "--retriever-option must look like KEY=VALUE"),
])
def test_option_flags_bad_input_is_one_line_exit_2(mini_task, cli, args, fragment):
    result = cli("run", "--task", str(mini_task), "--retriever", "bm25", *args)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1
