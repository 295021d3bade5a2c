"""Plugin discovery through real entry points: broken plugins, clashes, allow/block lists, strict mode."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from rrbench import RerankerSpec, RetrieverSpec, hookimpl
from rrbench.errors import UnknownComponentError, UsageError
from rrbench.registry import get_registry, registered_plugin


def _fake_distribution(root: Path, dist: str, module: str, source: str, ep_name: str | None = None) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[rrbench]\n{ep_name or module} = {module}\n", encoding="utf-8")


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


def test_plugins_lists_broken_and_clashing(cli, plugin_dir):
    result = cli("plugins", "--json", env={"PYTHONPATH": str(plugin_dir)})
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


def test_clashing_name_fails_naming_both_other_commands_work(cli, plugin_dir, mini_task):
    env = {"PYTHONPATH": str(plugin_dir)}
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


def test_strict_mode_makes_broken_plugin_fatal(cli, plugin_dir):
    result = cli("list", "rerankers", env={"PYTHONPATH": str(plugin_dir), "RRBENCH_STRICT_PLUGINS": "1"})
    assert result.returncode == 1
    assert "rrbench_broken_plugin" in result.stderr and "RRBENCH_STRICT_PLUGINS" in result.stderr


def test_allow_and_block_lists(cli, plugin_dir):
    env = {"PYTHONPATH": str(plugin_dir), "RRBENCH_DISABLE_PLUGINS": "rrbench_broken_plugin,rrbench-typo"}
    data = json.loads(cli("plugins", "--json", env=env).stdout)
    status = {p["name"]: p["status"] for p in data["plugins"]}
    assert status["rrbench_broken_plugin"] == "disabled" and status["rrbench_typo"] == "disabled"
    env = {"PYTHONPATH": str(plugin_dir), "RRBENCH_LOAD_PLUGINS": "rrbench_clash_a"}
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


def test_register_hook_contract_and_in_process_registration():
    with pytest.warns(RuntimeWarning, match="bad"), registered_plugin(_BadPlugin(), name="bad") as registry:
        # a wrong type in register_retrievers marks the plugin broken and drops everything it registered
        assert registry.plugins["bad"].status == "broken"
        assert "RetrieverSpec" in registry.plugins["bad"].reason
        assert not registry.has("rerankers", "bad-ce")
    with registered_plugin(_AliasPlugin(), name="alias") as registry:
        assert registry.get("rerankers", "extra-ce").plugin == "alias"
        with pytest.raises(UsageError, match="alias"):  # its alias clashes with the built-in minilm-l6
            registry.get("rerankers", "minilm-l6")
    assert get_registry().get("rerankers", "minilm-l6").plugin == "rrbench"


def test_spec_validation():
    with pytest.raises(ValueError, match="module:attr"):
        RetrieverSpec(id="x", loader="no_colon")
    with pytest.raises(ValueError, match="without spaces"):
        RetrieverSpec(id="has space", loader="a:b")


def test_help_and_list_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from rrbench.cli import main; rc = main(['list', 'rerankers']); "
            "main(['--help']); assert 'torch' not in sys.modules, 'torch imported'; print('clean')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "clean" in result.stdout
