"""``rrbench new-plugin``: one package per kind is generated, installed the cheap way, and its own tests pass."""

from __future__ import annotations

import pytest

from rrbench.cli.new_plugin import KINDS, scaffold
from rrbench.util.errors import UsageError


@pytest.fixture(scope="module")
def generated(plugin_env, tmp_path_factory):
    root = tmp_path_factory.mktemp("scaffolds")
    packages = {kind: scaffold(f"tpl-{kind}", kind, root) for kind in KINDS}
    plugin_env.install(*packages.values())
    return root, packages


def test_every_kind_scaffolds_a_complete_package(generated):
    _, packages = generated
    for kind, package in packages.items():
        module = "rrbench_tpl_" + kind
        assert (package / "pyproject.toml").read_text(encoding="utf-8").count('version = "0.1.0"') == 1
        assert f'tpl_{kind} = "{module}"' in (package / "pyproject.toml").read_text(encoding="utf-8")
        assert (package / module / "__init__.py").is_file() and (package / "README.md").is_file()
        assert (package / ".github" / "workflows" / "tests.yml").is_file()
        assert (package / "tests" / f"test_{module}.py").is_file()


def test_generated_packages_pass_their_own_tests(generated, plugin_env):
    root, packages = generated
    tests = [str(package / "tests") for package in packages.values()]
    result = plugin_env.run("-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, cwd=root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"{2 * len(KINDS) + 1} passed" in result.stdout  # two per package, plus the reranker's run test
    listing = plugin_env.rrbench("plugins", "--json", check=True)
    assert all(f'"tpl_{kind}"' in listing.stdout for kind in KINDS)


def test_bad_names_and_existing_folders_are_refused(tmp_path, cli):
    with pytest.raises(UsageError, match="lowercase letters"):
        scaffold("Bad Name", "rerankers", tmp_path)
    scaffold("ok", "miners", tmp_path)
    result = cli("new-plugin", "ok", "--kind", "miners", "--dir", str(tmp_path))
    assert result.returncode == 2 and "already exists" in result.stderr
