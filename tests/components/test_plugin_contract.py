"""The plugin contract (issue 13): one-line errors naming the plugin, checked outputs, qualified names, hook order,
isolation per hook call, silent mistakes made loud, spec fields validated."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest

from rrbench import FuserSpec, MinerSpec, RerankerSpec, RetrieverSpec, hookimpl
from rrbench.components.calls import PluginBuildError
from rrbench.components.registry import register_commands, registered_plugin
from rrbench.testing.fixtures import write_fake_plugin
from rrbench.util.errors import PluginError, UnknownComponentError, UsageError

FAULTY = "tests_faulty_components"  # a module holding deliberately broken components, written per test


def _write_faulty_module(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / f"{FAULTY}.py").write_text('''
import numpy as np
from rrbench.components.bases import PointwiseReranker
from rrbench.components.bases import Retriever


class WrongInit(PointwiseReranker):
    def __init__(self, spec):
        super().__init__(spec, None)

    def score_pairs(self, queries, documents):
        return np.zeros(len(queries))


class WrongSignature(PointwiseReranker):
    def score_pairs(self, pairs):
        return np.zeros(len(pairs))


class MissingMethod(PointwiseReranker):
    pass


class Raises(PointwiseReranker):
    def score_pairs(self, queries, documents):
        raise RuntimeError("model exploded")


class NaNs(PointwiseReranker):
    def score_pairs(self, queries, documents):
        return np.full(len(queries), np.nan)


class ShortRetriever(Retriever):
    def index(self, documents):
        self.n = len(documents)

    def score_all(self, query):
        return np.arange(self.n - 1, dtype=float)


class LongRetriever(ShortRetriever):
    def score_all(self, query):
        return np.arange(self.n + 5, dtype=float)


class NaNTailRetriever(ShortRetriever):
    def score_all(self, query):
        out = np.arange(self.n, dtype=float)
        out[0] = np.nan  # the lowest score: outside any top-k
        return out


class StringRetriever(ShortRetriever):
    def score_all(self, query):
        return np.array(["a"] * self.n)


class NoScoreAll:
    def __init__(self, spec, options):
        self.spec = spec

    def index(self, documents):
        pass
''', encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))


class _Faulty:
    @hookimpl
    def register_rerankers(self, register):
        for name in ("WrongInit", "WrongSignature", "MissingMethod", "Raises", "NaNs"):
            register(RerankerSpec(id=name.lower(), loader=f"{FAULTY}:{name}", score_kind="logit"))
        register(RerankerSpec(id="missing-module", loader="tests_no_such_module.model:DoesNotExist"))
        register(RerankerSpec(id="missing-attr", loader=f"{FAULTY}:DoesNotExist"))

    @hookimpl
    def register_retrievers(self, register):
        for name in ("ShortRetriever", "LongRetriever", "NaNTailRetriever", "StringRetriever", "NoScoreAll"):
            register(RetrieverSpec(id=name.lower(), loader=f"{FAULTY}:{name}", score_kind="similarity"))


@pytest.fixture
def faulty(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, FAULTY, raising=False)  # a fresh import from this test's folder
    _write_faulty_module(tmp_path, monkeypatch)
    with registered_plugin(_Faulty(), name="faulty") as registry:
        yield registry
    sys.modules.pop(FAULTY, None)


@pytest.mark.parametrize("name, fragment", [
    ("missing-module", "its loader 'tests_no_such_module.model:DoesNotExist' cannot be imported"),
    ("missing-attr", "cannot be imported: AttributeError"),
    ("wronginit", "cannot be built by"),
    ("wrongsignature", "score_pairs(pairs) cannot be called as score_pairs(queries, documents)"),
    ("missingmethod", "abstract"),
])
def test_components_that_cannot_be_built_name_the_plugin_exit_2(faulty, name, fragment):
    from rrbench.models.factory import load_reranker
    with pytest.raises(PluginBuildError) as info:
        load_reranker(name)
    message = str(info.value)
    assert message.startswith(f"plugin 'faulty' (no distribution), reranker '{name}': ")
    assert fragment in message and "\n" not in message
    assert info.value.exit_code == 2


@pytest.mark.parametrize("name, fragment", [
    ("raises", "score_pairs() raised RuntimeError: model exploded"),
    ("nans", "non-finite score"),
])
def test_components_failing_while_running_name_the_plugin_exit_1(faulty, mini_task, tmp_path, name, fragment):
    from rrbench.pipeline.runner import RunConfig, execute

    config = RunConfig(task=str(mini_task), reranker=name, output=str(tmp_path / "out"), show_progress=False,
                       use_cache=False)
    with pytest.raises(PluginError) as info:
        execute(config)
    assert f"plugin 'faulty' (no distribution), reranker '{name}'" in str(info.value)
    assert fragment in str(info.value) and info.value.exit_code == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("scope", ["post", "corpus"])
@pytest.mark.parametrize("name, fragment", [
    ("shortretriever", r"returned \d+ scores for \d+ candidates"),
    ("longretriever", r"returned \d+ scores for \d+ candidates"),
    ("nantailretriever", "non-finite"),
    ("stringretriever", "not numbers"),
])
def test_retriever_output_is_checked_in_both_scopes(faulty, tmp_path, scope, name, fragment):
    """n-1 or n+5 scores, a NaN outside the top-k, strings: each is a PluginError naming the plugin, in both scopes."""
    from rrbench.pipeline.candidates import retrieve
    from rrbench.retrievers.factory import load_retriever
    from rrbench.tasks.resolve import load_task_dir
    from rrbench.testing.fixtures import (
        MINI_POSTS,
        MINI_QRELS,
        MINI_QUERIES,
        write_task,
    )

    qrels = MINI_QRELS if scope == "post" else [
        {**row, "post_id": next(q["post_id"] for q in MINI_QUERIES if q["query_id"] == row["query_id"])}
        for row in MINI_QRELS]
    task = load_task_dir(write_task(tmp_path / "task", MINI_POSTS, MINI_QUERIES, qrels, scope=scope))
    assert task.spec.scope == scope
    queries = sorted(task.queries.values(), key=lambda q: q.query_id)
    with pytest.raises(PluginError, match=fragment) as info:
        retrieve(task, queries, load_retriever(name), top_k=3)
    assert str(info.value).startswith(f"plugin 'faulty' (no distribution), retriever '{name}': ")


def test_retriever_without_a_required_method_cannot_be_built(faulty):
    from rrbench.retrievers.factory import load_retriever
    with pytest.raises(PluginBuildError, match="NoScoreAll has no method score_all"):
        load_retriever("noscoreall")


def test_cli_prints_one_line_and_documented_exit_codes(tmp_path, mini_task, monkeypatch, cli):
    """Through a real entry point: build failure exit 2, run failure exit 1, one line naming the distribution."""
    root = tmp_path / "site"
    root.mkdir()
    _write_faulty_module(root, monkeypatch)
    write_fake_plugin(root, "rrbench-faulty", "tests_faulty_plugin", f"""
        from rrbench import RerankerSpec, hookimpl

        @hookimpl
        def register_rerankers(register):
            register(RerankerSpec(id="raises", loader="{FAULTY}:Raises"))
            register(RerankerSpec(id="gone", loader="{FAULTY}:Gone"))
    """, ep_name="faulty", version="0.1")
    env = {"PYTHONPATH": str(root), "RRBENCH_LOAD_PLUGINS": "faulty,rrbench-sklearn"}
    for reranker, code in (("raises", 1), ("gone", 2)):
        result = cli("run", "--task", str(mini_task), "--reranker", reranker, "--quiet", "--no-cache",
                         "--output", str(tmp_path / reranker), env=env)
        assert result.returncode == code, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert f"plugin 'faulty' (distribution rrbench-faulty 0.1), reranker '{reranker}'" in lines[0]


# -- names --------------------------------------------------------------------------------------------------------
class _Shadow:
    @hookimpl
    def register_retrievers(self, register):
        register(RetrieverSpec(id="my-bm25", aliases=("bm25", "sparse"), loader="rrbench.retrievers.bm25:BM25Retriever",
                               options={"k1": 1.2, "b": 0.75, "method": "lucene", "stemmer": "english",
                                        "stopwords": "en"}))


class _Other:
    @hookimpl
    def register_retrievers(self, register):
        register(RetrieverSpec(id="sparse", loader="rrbench.retrievers.bm25:BM25Retriever"))
        register(RetrieverSpec(id="tfidf", loader="rrbench.retrievers.bm25:BM25Retriever"))


def test_alias_shadowing_a_builtin_is_refused_and_qualified_names_resolve():
    with registered_plugin(_Shadow(), name="shadow") as registry:
        assert registry.get("retrievers", "bm25").plugin == "rrbench"
        assert registry.get("retrievers", "rrbench:bm25").plugin == "rrbench"
        assert registry.get("retrievers", "shadow:my-bm25").id == "my-bm25"
        assert registry.get("retrievers", "shadow:bm25").id == "my-bm25"  # its own alias, qualified, still works
        notice = next(n for n in registry.notices if "alias 'bm25'" in n)
        assert "plugin 'shadow'" in notice and "plugin 'rrbench'" in notice and "shadow:my-bm25" in notice
        with pytest.raises(UnknownComponentError, match="plugin 'shadow' registers no retriever 'nope'"):
            registry.get("retrievers", "shadow:nope")
        with registered_plugin(_Other(), name="other") as both:
            # ids win over aliases: 'sparse' is other's id and only shadow's alias
            assert both.get("retrievers", "sparse").plugin == "other"
            # two ids: ambiguous, and the message says how to choose
            with pytest.raises(UsageError, match=r"use a qualified name \(other:tfidf or sklearn:tfidf\)"):
                both.get("retrievers", "tfidf")
            assert both.get("retrievers", "sklearn:tfidf").plugin == "sklearn"


def test_plain_quickstart_run_survives_a_shadowing_plugin(mini_task, tmp_path):
    from rrbench.pipeline.runner import RunConfig, execute

    with registered_plugin(_Shadow(), name="shadow"):
        record = execute(RunConfig(task=str(mini_task), output=str(tmp_path / "out"), show_progress=False))
    assert record["config"]["generator"]["retrievers"][0]["id"] == "bm25"


# -- spec fields ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, fragment", [
    (lambda: RerankerSpec(id="x", loader="a:b", score_kind="prob"), "score_kind 'prob' is not one of"),
    (lambda: RerankerSpec(id="x", loader="a:b", interaction="pairwise"), "Did you mean: pointwise?"),
    (lambda: RerankerSpec(id="x", loader="a:b", backend="crossencoder"), "Did you mean: cross-encoder?"),
    (lambda: RerankerSpec(id="x", loader="a:b", max_length=0), "max_length must be an integer >= 8"),
    (lambda: RetrieverSpec(id="x", loader="a:b", score_kind="BM25"), "Did you mean: bm25?"),
    (lambda: __import__("rrbench").LossSpec(id="x", loader="a:b", input_format="pairs"), "input_format 'pairs'"),
])
def test_closed_spec_fields_are_validated_with_a_suggestion(make, fragment):
    with pytest.raises(ValueError, match=fragment.replace("?", r"\?").replace("(", r"\(")):
        make()


def test_a_plugin_reranker_without_backend_is_not_recorded_as_a_cross_encoder():
    assert RerankerSpec(id="x", loader="my_pkg.model:Mine").backend == "custom"
    assert RerankerSpec(id="x", loader="rrbench.models.cross_encoder:CrossEncoderReranker").backend == "cross-encoder"


class _BadField:
    @hookimpl
    def register_rerankers(self, register):
        register(RerankerSpec(id="prob-model", loader="a:b", score_kind="prob"))


def test_a_bad_spec_field_is_reported_at_registration_naming_the_plugin():
    with registered_plugin(_BadField(), name="badfield") as registry:
        assert registry.plugins["badfield"].status == "partial"
        assert "score_kind 'prob'" in registry.plugins["badfield"].reason
        assert "Did you mean: probability?" in registry.plugins["badfield"].reason


# -- silent mistakes -----------------------------------------------------------------------------------------------
class _Sloppy:
    def register_tasks(self, register):  # no @hookimpl
        pass

    @hookimpl
    def register_fusers(self):  # takes no argument
        pass

    @hookimpl
    def register_miners(self, register):
        register(MinerSpec(id="twice", loader="rrbench.training.miners:RandomMiner"))
        register(MinerSpec(id="twice", loader="rrbench.training.miners:RandomMiner"))


def test_silent_mistakes_get_warnings_that_say_what_to_do():
    with registered_plugin(_Sloppy(), name="sloppy") as registry:
        problems = " | ".join(registry.plugins["sloppy"].problems)
    assert "register_tasks is not decorated with @rrbench.hookimpl" in problems
    assert "register_fusers() takes no argument" in problems and "register_fusers(register)" in problems
    assert "registers miner 'twice' twice; the second registration is ignored" in problems
    assert "'sloppy' and 'sloppy'" not in problems


def test_misspelt_load_list_says_so(cli):
    result = cli("list", "fusers", env={"RRBENCH_LOAD_PLUGINS": "sklearm"})
    assert result.returncode == 0
    assert "RRBENCH_LOAD_PLUGINS names 'sklearm', which is no installed plugin" in result.stderr
    assert "Did you mean: sklearn" in result.stderr


# -- hook order and isolation -----------------------------------------------------------------------------------
CALLS: list[str] = []


def _recorder(label: str, **marker):
    class Plugin:
        @hookimpl(**marker)
        def register_fusers(self, register):
            CALLS.append(label)
            register(FuserSpec(id=f"fuser-{label}", loader="rrbench.retrievers.fusion:RRFFuser",
                               option_schema=(__import__("rrbench").OptionSpec("k0", "float", 60.0, low=1, high=100),)))

    return Plugin()


def test_hooks_run_in_pluggys_order_and_wrappers_are_refused():
    import pluggy

    CALLS.clear()
    with registered_plugin(_recorder("first", tryfirst=True), "a"), \
            registered_plugin(_recorder("plain"), "b"), \
            registered_plugin(_recorder("last", trylast=True), "c") as registry:
        order = [c for c in CALLS if c in ("first", "plain", "last")][-3:]
        assert order == ["first", "plain", "last"]
        # the same order pluggy uses when it calls the hook itself
        pm = pluggy.PluginManager("rrbench")
        from rrbench.components import hookspecs

        pm.add_hookspecs(hookspecs)
        for name, obj in (("a", _recorder("first", tryfirst=True)), ("b", _recorder("plain")),
                          ("c", _recorder("last", trylast=True))):
            pm.register(obj, name=name)
        CALLS.clear()
        pm.hook.register_fusers(register=lambda spec: None)
        assert order == CALLS
        assert registry.has("fusers", "fuser-first")

    class Wrapper:
        @hookimpl(wrapper=True)
        def register_fusers(self, register):
            return (yield)

    with registered_plugin(Wrapper(), "wrapping") as registry:
        assert any("hook wrapper" in p for p in registry.plugins["wrapping"].problems)
        assert registry.has("fusers", "rrf")


def test_a_failing_builtin_hook_loses_only_its_own_components(monkeypatch):
    import rrbench.retrievers.fusion_catalog
    from rrbench.components.registry import build_registry

    def boom(register):
        raise RuntimeError("catalogue broken")

    monkeypatch.setattr(rrbench.retrievers.fusion_catalog, "register_fusers", boom)
    registry = build_registry()
    assert registry.plugins["rrbench"].status == "partial"
    assert "register_fusers raised RuntimeError: catalogue broken" in registry.plugins["rrbench"].reason
    assert registry.list("fusers") == []
    assert registry.has("retrievers", "bm25") and registry.has("tasks", "scifact-evidence")


class _Commands:
    def __init__(self, name: str, fail: bool = False) -> None:
        self.name, self.fail = name, fail

    @hookimpl
    def register_commands(self, cli):
        @cli.command(self.name)
        def _cmd() -> None:
            click.echo("hi")

        if self.fail:
            raise RuntimeError("half-way")


def test_register_commands_is_isolated_per_plugin_and_cannot_replace_commands(capsys):
    from rrbench.cli.main import LazyGroup
    from rrbench.cli.run import run as builtin_run

    group = LazyGroup("rrbench")
    with registered_plugin(_Commands("good"), "good"), registered_plugin(_Commands("bad", fail=True), "bad"), \
            registered_plugin(_Commands("run"), "thief") as registry:
        register_commands(group)
        assert "good" in group.commands and "bad" not in group.commands
        assert "run" not in group.commands  # the thief's command was refused ...
        assert group.get_command(click.Context(group), "run") is builtin_run  # ... and run is still rrbench's
        assert registry.plugins["bad"].status == "partial"
        assert "register_commands raised RuntimeError: half-way" in registry.plugins["bad"].reason
        assert any("command 'run' already exists" in p for p in registry.plugins["thief"].problems)
        assert "check" in group.lazy  # built-in commands arrive through the same hook, as lazy commands
    assert "half-way" in capsys.readouterr().err


def test_builtins_resolve_from_an_uninstalled_source_tree(tmp_path):
    """Without rrbench.builtin_tasks (never pip-installed), tasks come from the tasks/ folder next to the package."""
    root = Path(__file__).resolve().parents[2]
    code = ("import sys; sys.modules['rrbench.builtin_tasks'] = None\n"
            "from rrbench.components.registry import get_registry\n"
            "r = get_registry(); print(r.get('tasks', 'scifact-evidence').spec.path)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=False)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == root / "tasks" / "scifact-evidence"


def test_trace_shows_order_registrations_and_skips(cli, tmp_path):
    root = write_fake_plugin(tmp_path / "site", "rrbench-broken", "tests_broken_plugin", "raise ImportError('x')\n")
    result = cli("plugins", "--trace", env={"PYTHONPATH": str(root), "RRBENCH_LOAD_PLUGINS": None})
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("load rrbench (rrbench ")
    assert any(line.startswith("  rrbench.register_fusers: rrf, weighted") for line in lines)
    assert any("tests_broken_plugin" in line and "broken" in line for line in lines)
    assert any(line.startswith("  rrbench.register_commands: ") and "check" in line for line in lines)
    data = json.loads(cli("plugins", "--json", env={"RRBENCH_LOAD_PLUGINS": "rrbench-sklearn"}).stdout)
    status = {p["name"]: p for p in data["plugins"]}
    assert status["pyserini"]["status"] == "disabled" and status["sklearn"]["registered"]["retrievers"]


def test_own_tests_do_not_see_third_party_plugins(tmp_path):
    """With a faulty plugin on the path, rrbench's own listing tests still pass (the suite pins its plugin set)."""
    root = write_fake_plugin(tmp_path / "site", "rrbench-faulty2", "tests_faulty2", """
        from rrbench import RetrieverSpec, hookimpl

        @hookimpl
        def register_retrievers(register):
            register(RetrieverSpec(id="bm25-again", aliases=("minilm-l6",), loader="x:y"))
            raise RuntimeError("faulty")
    """)
    tests = Path(__file__).resolve().parent
    env = {**__import__("os").environ, "PYTHONPATH": str(root)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(tests / "test_registry.py"), "-k", "two_kinds or unknown_id or hook_contract"],
                            capture_output=True, text=True, env=env, cwd=tests.parent, check=False)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "3 passed" in result.stdout


# -- records name their plugins -------------------------------------------------------------------------------
def test_records_name_the_plugin_of_each_component_and_reproduce_says_what_to_install(mini_task, tmp_path, cli):
    out = tmp_path / "run"
    result = cli("run", "--task", str(mini_task), "--retriever", "tfidf", "--quiet", "--no-cache",
                 "--output", str(out))
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "results.json").read_text(encoding="utf-8"))
    retriever = record["config"]["generator"]["retrievers"][0]
    assert retriever["plugin"] == "sklearn" and retriever["distribution"] == "rrbench-sklearn"
    assert record["system"].startswith("sklearn:tfidf (no reranker)")
    assert record["provenance"]["packages"]["rrbench-sklearn"] == retriever["version"]
    missing = cli("reproduce", str(out), env={"RRBENCH_DISABLE_PLUGINS": "sklearn"})
    assert missing.returncode == 2
    assert "retriever 'sklearn:tfidf' is not registered here (it comes from plugin 'sklearn'" in missing.stderr
    assert f"pip install 'rrbench-sklearn=={retriever['version']}'" in missing.stderr


def test_builtin_and_fused_components_are_attributed(mini_task, tmp_path):
    from rrbench.pipeline.runner import RunConfig, execute

    claims = execute(RunConfig(task=str(mini_task), retriever=("bm25", "tfidf"), fusion="rrf",
                               output=str(tmp_path / "o"), show_progress=False))["config"]
    assert (claims["generator"]["fusion"]["plugin"], claims["generator"]["fusion"]["id"]) == ("rrbench", "rrf")
    assert [r["plugin"] for r in claims["generator"]["retrievers"]] == ["rrbench", "sklearn"]


# -- the fault cases for the other kinds ---------------------------------------------------------------------------
OTHER_KINDS = "tests_faulty_other_kinds"


class _OtherKinds:
    @hookimpl
    def register_fusers(self, register):
        register(FuserSpec(id="fuse-raises", loader=f"{OTHER_KINDS}:RaisingFuser"))
        register(FuserSpec(id="fuse-signature", loader=f"{OTHER_KINDS}:WrongSignatureFuser"))
        register(FuserSpec(id="fuse-nan", loader=f"{OTHER_KINDS}:NaNFuser"))

    @hookimpl
    def register_miners(self, register):
        register(MinerSpec(id="mine-signature", loader=f"{OTHER_KINDS}:WrongSignatureMiner"))
        register(MinerSpec(id="mine-import", loader="tests_no_such_module:Miner"))

    @hookimpl
    def register_losses(self, register):
        from rrbench import LossSpec

        register(LossSpec(id="loss-import", loader="tests_no_such_module:make"))


@pytest.fixture
def other_kinds(tmp_path, monkeypatch):
    (tmp_path / f"{OTHER_KINDS}.py").write_text('''
import numpy as np
from rrbench.retrievers.fusion import Fuser
from rrbench.training.miners import Miner


class RaisingFuser(Fuser):
    def fuse(self, runs):
        raise KeyError("lost")


class WrongSignatureFuser(Fuser):
    def fuse(self, first, second):
        return first


class NaNFuser(Fuser):
    def fuse(self, runs):
        ids = np.unique(np.concatenate([r[0] for r in runs]))
        return ids, np.full(len(ids), np.nan)


class WrongSignatureMiner(Miner):
    def mine(self, task):
        return {}
''', encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, OTHER_KINDS, raising=False)
    with registered_plugin(_OtherKinds(), name="others"):
        yield
    sys.modules.pop(OTHER_KINDS, None)


def test_fault_cases_of_fusers_miners_and_losses_name_the_plugin(other_kinds):
    from rrbench.components.calls import load_factory
    from rrbench.components.registry import resolve
    from rrbench.pipeline.candidates import fuse_pools
    from rrbench.retrievers.fusion import load_fuser
    from rrbench.training.miners import load_miner

    runs = [[(np.array([1, 2, 3]), np.array([3.0, 2.0, 1.0]))], [(np.array([2, 4]), np.array([1.0, 0.5]))]]
    with pytest.raises(PluginError, match=r"^plugin 'others' \(no distribution\), fuser 'fuse-raises': fuse\(\) "
                                          r"raised KeyError") as info:
        fuse_pools(load_fuser("fuse-raises"), runs, 10)
    assert info.value.exit_code == 1
    with pytest.raises(PluginError, match="fuser 'fuse-nan': fuse.. returned 4 non-finite"):
        fuse_pools(load_fuser("fuse-nan"), runs, 10)
    with pytest.raises(PluginBuildError, match=r"fuser 'fuse-signature': WrongSignatureFuser.fuse\(first, second\) "
                                               r"cannot be called as fuse\(runs\)"):
        load_fuser("fuse-signature")
    with pytest.raises(PluginBuildError, match="miner 'mine-signature': .*cannot be called as mine"):
        load_miner("mine-signature")
    with pytest.raises(PluginBuildError, match="miner 'mine-import': its loader .* cannot be imported"):
        load_miner("mine-import")
    with pytest.raises(PluginBuildError, match="loss 'loss-import': its loader .* cannot be imported"):
        load_factory("losses", resolve("losses", "loss-import").spec)
