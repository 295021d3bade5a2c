"""Shared fixtures: the mini task, a tiny cross-encoder, and a CLI runner that isolates environment and cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rrbench.testing.fixtures import make_mini_task, make_tiny_bert
from tests.support import run_cli

ROOT = Path(__file__).resolve().parent.parent
#: rrbench's own in-repo plugins, installed by the README's Testing block
PINNED_PLUGINS = "rrbench-sklearn,rrbench-pyserini"
os.environ["RRBENCH_LOAD_PLUGINS"] = PINNED_PLUGINS  # also during collection


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test touches the user's cache or task folders, and nothing reaches for the network."""
    monkeypatch.setenv("RRBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RRBENCH_TASKS_DIR", str(tmp_path / "user-tasks"))
    monkeypatch.setenv("RRBENCH_TEST_LEDGER", str(tmp_path / "test-ledger.jsonl"))  # never the repo's ledger
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    # off a terminal long steps log a line every 10 s (rrbench.util.progress); on a loaded machine that would reach
    # tests that read stderr exactly, so only tests/util/test_progress.py turns it on
    monkeypatch.setenv("RRBENCH_PROGRESS_INTERVAL", "100000")
    # Pin the plugin set: a third-party plugin installed in the same environment must not change rrbench's tests.
    # Tests that install plugins of their own set RRBENCH_LOAD_PLUGINS themselves (run_cli: a None value unsets).
    monkeypatch.setenv("RRBENCH_LOAD_PLUGINS", PINNED_PLUGINS)


@pytest.fixture(scope="module")
def torch_one_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine spinning threads cost 10x."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def mini_task(tmp_path) -> Path:
    return make_mini_task(tmp_path / "mini-task")


@pytest.fixture
def registered_task():
    """The mini task as a registered user task (the leaderboard accepts registered tasks only)."""
    from rrbench.components.registry import reset_registry

    make_mini_task(Path(os.environ["RRBENCH_TASKS_DIR"]) / "mini-task")
    reset_registry()
    yield "mini-task"
    reset_registry()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert")


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a real PostgreSQL server for the whole session (tests/support/pg_server.py); skipped only without binaries."""
    from tests.support.pg_server import find_pg_bin, postgres_server

    if os.environ.get("RRBENCH_TEST_POSTGRES_URL"):
        yield os.environ["RRBENCH_TEST_POSTGRES_URL"]
        return
    pg_bin = find_pg_bin()
    if pg_bin is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) installed; set RRBENCH_PG_BIN or "
                    "RRBENCH_TEST_POSTGRES_URL to run the PostgreSQL tests")
    with postgres_server(pg_bin) as url:
        yield url


@pytest.fixture(scope="session")
def plugin_env(tmp_path_factory):
    """One throwaway environment on top of this one, shared by the tests that install plugin packages."""
    from rrbench.testing.plugin_env import PluginEnv

    return PluginEnv(tmp_path_factory.mktemp("plugin-env") / "venv")
