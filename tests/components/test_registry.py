"""Plugin discovery through real entry points: broken plugins, clashes, allow/block lists, strict mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rrbench import RerankerSpec, RetrieverSpec, hookimpl
from rrbench.components.registry import get_registry, registered_plugin
from rrbench.testing.fixtures import write_fake_plugin
from rrbench.util.errors import UnknownComponentError

_fake_distribution = write_fake_plugin


CLASH_SOURCE = """
from rrbench import RetrieverSpec, hookimpl

@hookimpl
def register_retrievers(register):
    register(RetrieverSpec(id="{id}", aliases=("shared-name",), loader="rrbench.retrievers.bm25:BM25Retriever",
                           description="bm25 under another name", score_kind="bm25",
                           options={{"k1": 1.2, "b": 0.75, "method": "lucene", "stemmer": "english", "stopwords": "en"}}))
"""


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    _fake_distribution(root, "rrbench-broken", "rrbench_broken_plugin", "raise ImportError('needs libfoo 2.0')\n")
    _fake_distribution(root, "rrbench-clash-a", "rrbench_clash_a", CLASH_SOURCE.format(id="bm25-a"))
    _fake_distribution(root, "rrbench-clash-b", "rrbench_clash_b", CLASH_SOURCE.format(id="bm25-b"))
    _fake_distribution(root, "rrbench-typo", "rrbench_typo", """
        from rrbench import hookimpl
        @hookimpl
        def register_rerankerz(register):
            pass
    """)
    return root


def _env(plugin_dir: Path, **extra: str | None) -> dict:
    return {"PYTHONPATH": str(plugin_dir), "RRBENCH_LOAD_PLUGINS": None, **extra}


def test_plugins_lists_broken_and_clashing(cli, plugin_dir):
    result = cli("plugins", "--json", env=_env(plugin_dir))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    status = {p["name"]: p for p in data["plugins"]}
    assert status["rrbench_broken_plugin"]["status"] == "broken"
    assert "needs libfoo 2.0" in status["rrbench_broken_plugin"]["reason"]
    assert status["rrbench_broken_plugin"]["distribution"] == "rrbench-broken"
    assert status["rrbench_typo"]["status"] == "broken"
    assert "register_rerankerz" in status["rrbench_typo"]["reason"]
    assert status["rrbench_clash_a"]["status"] == "ok"
    assert status["rrbench_clash_a"]["version"] == "0.3"
    assert {"kind": "retrievers", "name": "shared-name",
            "plugins": ["rrbench_clash_a:bm25-a", "rrbench_clash_b:bm25-b"]} in data["clashes"]
    assert "broken and was skipped" in result.stderr
    # one line per problem, no Python warnings machinery (file paths, source lines)
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("rrbench: warning: ") for line in lines), lines
    assert sum("rrbench_broken_plugin" in line for line in lines) == 1
    assert "registry.py" not in result.stderr and "warn(" not in result.stderr


def test_clashing_name_fails_naming_both_other_commands_work(cli, plugin_dir, mini_task):
    env = _env(plugin_dir)
    bad = cli("run", "--task", str(mini_task), "--retriever", "shared-name", "--quiet",
              "--output", str(plugin_dir / "out1"), env=env)
    assert bad.returncode == 2
    assert "rrbench_clash_a" in bad.stderr and "rrbench_clash_b" in bad.stderr
    assert not (plugin_dir / "out1").exists()
    good = cli("run", "--task", str(mini_task), "--retriever", "bm25-a", "--quiet",
               "--output", str(plugin_dir / "out2"), env=env)
    assert good.returncode == 0, good.stderr
    listing = cli("list", "retrievers", env=env)
    assert listing.returncode == 0 and "bm25-a" in listing.stdout and "CLASH" in listing.stderr


def test_strict_mode_aborts_real_work_only(cli, plugin_dir, mini_task):
    env = _env(plugin_dir, RRBENCH_STRICT_PLUGINS="1")
    for diagnose in (("--help",), ("plugins",), ("list", "rerankers")):
        assert cli(*diagnose, env=env).returncode == 0, diagnose
    result = cli("run", "--task", str(mini_task), "--quiet", "--output", str(plugin_dir / "out"), env=env)
    assert result.returncode == 2
    message = [line for line in result.stderr.splitlines() if line.startswith("rrbench: error:")]
    assert len(message) == 1 and "RRBENCH_STRICT_PLUGINS" in message[0]
    assert "rrbench_broken_plugin" in message[0] and "needs libfoo 2.0" in message[0]
    assert "was skipped" not in message[0] and message[0].count("rrbench:") == 1
    assert "shared-name" in message[0]  # clashes count as problems
    assert not (plugin_dir / "out").exists()


def test_strict_mode_counts_a_clash_alone(cli, plugin_dir, mini_task):
    env = _env(plugin_dir, RRBENCH_STRICT_PLUGINS="1", RRBENCH_LOAD_PLUGINS="rrbench_clash_a,rrbench_clash_b")
    result = cli("run", "--task", str(mini_task), "--quiet", "--output", str(plugin_dir / "out"), env=env)
    assert result.returncode == 2 and "shared-name" in result.stderr and "rrbench_clash_a:bm25-a" in result.stderr


def test_allow_and_block_lists(cli, plugin_dir):
    env = _env(plugin_dir, RRBENCH_DISABLE_PLUGINS="rrbench_broken_plugin,rrbench-typo")
    data = json.loads(cli("plugins", "--json", env=env).stdout)
    status = {p["name"]: p["status"] for p in data["plugins"]}
    assert status["rrbench_broken_plugin"] == "disabled" and status["rrbench_typo"] == "disabled"
    env = _env(plugin_dir, RRBENCH_LOAD_PLUGINS="rrbench_clash_a")
    result = cli("plugins", "--json", env=env)
    data = json.loads(result.stdout)
    status = {p["name"]: p["status"] for p in data["plugins"]}
    assert status["rrbench_clash_a"] == "ok" and status["rrbench_clash_b"] == "disabled"
    assert status["rrbench"] == "ok"  # built-ins are never disabled
    assert data["clashes"] == [] and "broken" not in result.stderr


def test_same_name_in_two_kinds_is_fine():
    registry = get_registry()
    assert registry.get("rerankers", "minilm-l6").spec.kind == "rerankers"
    assert registry.get("retrievers", "minilm-l6").spec.kind == "retrievers"
    assert registry.get("rerankers", "sentence-transformers/all-MiniLM-L6-v2").id == "minilm-l6"


def test_unknown_id_suggests_close_matches():
    with pytest.raises(UnknownComponentError, match="Did you mean: minilm-l6"):
        get_registry().get("rerankers", "minilm-l7")


class _BadPlugin:
    @hookimpl
    def register_rerankers(self, register):
        register(RerankerSpec(id="bad-ce", loader="rrbench.models.cross_encoder:CrossEncoderReranker"))

    @hookimpl
    def register_retrievers(self, register):
        register("not a spec")


class _AliasPlugin:
    @hookimpl
    def register_rerankers(self, register):
        register(RerankerSpec(id="extra-ce", aliases=("minilm-l6",),
                              loader="rrbench.models.cross_encoder:CrossEncoderReranker"))


def test_register_hook_contract_and_in_process_registration(capsys):
    with registered_plugin(_BadPlugin(), name="bad") as registry:
        # a wrong type in register_retrievers loses that call's work only; the plugin's rerankers stay
        assert registry.plugins["bad"].status == "partial"
        assert "RetrieverSpec" in registry.plugins["bad"].reason
        assert registry.has("rerankers", "bad-ce")
    assert "rrbench: warning: plugin 'bad'" in capsys.readouterr().err
    with registered_plugin(_AliasPlugin(), name="alias") as registry:
        assert registry.get("rerankers", "extra-ce").plugin == "alias"
        # its alias would shadow the built-in minilm-l6: refused, whatever the loading order
        assert registry.get("rerankers", "minilm-l6").plugin == "rrbench"
        assert any("shadows the built-in reranker 'minilm-l6'" in n for n in registry.notices)
    assert get_registry().get("rerankers", "minilm-l6").plugin == "rrbench"


def test_spec_validation():
    with pytest.raises(ValueError, match="module:attr"):
        RetrieverSpec(id="x", loader="no_colon")
    with pytest.raises(ValueError, match="no spaces"):
        RetrieverSpec(id="has space", loader="a:b")


def test_help_and_list_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from rrbench.cli.main import main; rc = main(['list', 'rerankers']); "
            "main(['--help']); assert 'torch' not in sys.modules, 'torch imported'; print('clean')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "clean" in result.stdout


SAME_ID_SOURCE = """
from rrbench import RerankerSpec, RetrieverSpec, hookimpl

@hookimpl
def register_retrievers(register):
    register(RetrieverSpec(id="bm25", loader="rrbench.retrievers.bm25:BM25Retriever", description="their bm25",
                           score_kind="bm25", options={"k1": 0.5, "b": 0.2, "method": "lucene", "stemmer": "english",
                                                       "stopwords": "en"}))

@hookimpl
def register_rerankers(register):
    register(RerankerSpec(id="minilm-l6", loader="rrbench.models.cross_encoder:CrossEncoderReranker"))
"""


def test_a_plugin_reusing_a_builtin_id_never_breaks_a_plain_command(cli, tmp_path, mini_task):
    """Issue 26: a plugin registering ``bm25`` and ``minilm-l6`` leaves the plain names to the built-ins (a warning
    says how to reach the plugin's), so the default ``rrbench run`` keeps working and keeps using rrbench's bm25."""
    root = tmp_path / "site"
    _fake_distribution(root, "rrbench-same-id", "rrbench_same_id", SAME_ID_SOURCE, ep_name="same", version="0.1")
    env = _env(root, RRBENCH_LOAD_PLUGINS="same")
    result = cli("run", "--task", str(mini_task), "--quiet", "--output", str(tmp_path / "out"), env=env)
    assert result.returncode == 0, result.stderr
    assert "retriever id 'bm25' is a built-in retriever name" in result.stderr and "same:bm25" in result.stderr
    record = json.loads((tmp_path / "out" / "results.json").read_text())
    (retriever,) = record["config"]["generator"]["retrievers"]
    assert retriever["plugin"] == "rrbench" and retriever["options"]["k1"] == 1.5  # rrbench's own bm25
    theirs = cli("run", "--task", str(mini_task), "--retriever", "same:bm25", "--quiet",
                 "--output", str(tmp_path / "theirs"), env=env)
    assert theirs.returncode == 0, theirs.stderr
    record = json.loads((tmp_path / "theirs" / "results.json").read_text())
    (retriever,) = record["config"]["generator"]["retrievers"]
    assert retriever["plugin"] == "same" and retriever["options"]["k1"] == 0.5  # the record names the plugin


def test_suggestions_name_each_component_once():
    message = ""
    try:
        get_registry().get("rerankers", "MiniLM-L6")
    except UnknownComponentError as exc:
        message = str(exc)
    suggested = message.split("Did you mean: ")[1].split("?")[0].split(", ")
    assert suggested.count("minilm-l6") == 1 and "rrbench:minilm-l6" not in suggested
    assert "all-MiniLM-L6-v2" not in suggested  # an alias of the same model is not listed again
