"""Issue 14, defects 4 and 5: labelled rrbench progress bars where waits are long, one switch that silences every
bar (the libraries' too), and `rrbench train` errors that arrive before any heavy library loads."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from rrbench.util import progress as progress_mod

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def bars_on(monkeypatch):
    """Bars as on a terminal (capsys' stderr is not one)."""
    monkeypatch.setattr(progress_mod, "_QUIET", False)
    monkeypatch.setattr(progress_mod, "bars_enabled", lambda requested=None: requested is not False
                        and not progress_mod._QUIET)


def test_dense_encoding_and_retrieval_show_labelled_bars(bars_on, capsys, mini_task, tmp_path):
    from rrbench.pipeline.candidates import GeneratorConfig, generate
    from rrbench.tasks.resolve import load_task_dir
    from rrbench.testing.fixtures import make_tiny_bi_encoder

    weights = make_tiny_bi_encoder(tmp_path / "bi")
    capsys.readouterr()
    task = load_task_dir(mini_task)
    queries = task.split_queries("dev_select")
    generate(task, "dev_select", queries, GeneratorConfig(("minilm-l6",)), 3, use_cache=False,
             model_path=str(weights))
    err = capsys.readouterr().err
    assert "encoding sentences (minilm-l6)" in err and "retrieving (minilm-l6)" in err


def test_chunked_encoding_keeps_the_input_order():
    from rrbench.retrievers.encoding import encode_with_progress

    texts = [("x" * n) for n in (3, 9, 1, 9, 5, 2, 7)]
    out = encode_with_progress(lambda chunk: np.asarray([[len(t)] for t in chunk], dtype=float), texts, 1, "t",
                               np.concatenate)
    assert out[:, 0].tolist() == [len(t) for t in texts]


def test_quiet_silences_rrbench_and_library_bars(monkeypatch):
    import transformers

    monkeypatch.setattr(progress_mod, "_QUIET", False)
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    try:
        progress_mod.set_quiet(True)
        assert not progress_mod.bars_enabled(True)
        assert not transformers.utils.logging.is_progress_bar_enabled()
        from huggingface_hub.utils import are_progress_bars_disabled

        assert are_progress_bars_disabled()
    finally:
        progress_mod.set_quiet(False)
    assert transformers.utils.logging.is_progress_bar_enabled()


def test_quiet_run_prints_no_loading_bars_even_off_a_terminal(mini_task, tmp_path, cli):
    from rrbench.testing.fixtures import make_tiny_bi_encoder

    weights = make_tiny_bi_encoder(tmp_path / "bi")
    result = cli("run", "--task", str(mini_task), "--retriever", "minilm-l6", "--model-path", str(weights),
                 "--output", str(tmp_path / "out"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Loading weights" not in result.stderr and "%|" not in result.stderr


def _light_failure(command: str, args: list[str]) -> tuple[int, str, bool]:
    """Run an rrbench command in a fresh interpreter; also report whether torch got imported before the error."""
    code = ("import sys\nfrom rrbench.cli.main import main\nrc = main(sys.argv[1:])\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\nsys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, command, *args], capture_output=True, text=True)
    return done.returncode, done.stderr.strip(), "NO-TORCH" in done.stdout


def _train_failure(args: list[str]) -> tuple[int, str, bool]:
    return _light_failure("train", args)


@pytest.mark.parametrize("extra, fragment", [
    (["--output", "{task}"], "output directory exists and is not empty"),
    (["--retriever", "bm52"], "unknown retriever 'bm52'"),
    (["--split", "trian"], "has no split 'trian'"),
    (["--retriever-option", "k2=1"], "has no option 'k2'"),
    (["--fusion", "rrf"], "--fusion rrf fuses several retrievers"),
])
def test_run_errors_arrive_before_the_reranker_loads(mini_task, tmp_path, extra, fragment):
    args = ["--task", str(mini_task), "--reranker", "minilm-l6", "--quiet"]
    args += [a.replace("{task}", str(mini_task)) for a in extra]
    if "--output" not in extra:
        args += ["--output", str(tmp_path / "out")]
    rc, err, light = _light_failure("run", args)
    assert rc == 2 and fragment in err and len(err.splitlines()) == 1, err
    assert light, "torch was imported before the error"


def test_train_errors_arrive_before_any_model_library_loads(mini_task, tmp_path):
    rc, err, light = _train_failure(["--task", str(mini_task), "--output", str(tmp_path / "t")])
    assert rc == 2 and light, err
    assert err.startswith("rrbench: error: task 'mini-task' has no split 'train'")
    rc, err, light = _train_failure(["--task", "scifact-evidence-open", "--output", str(tmp_path / "t")])
    assert rc == 2 and light and "needs a post-scope task" in err, err
    assert not (tmp_path / "t").exists()


def test_train_takes_context_like_run(mini_task, tmp_path):
    """`--context` as in `rrbench run` (the old `--context-window` still works); a bad value fails before torch."""
    for flag in ("--context", "--context-window"):
        rc, err, light = _train_failure(["--task", str(mini_task), flag, "1", "--output", str(tmp_path / "t")])
        assert rc == 2 and light and "has no split 'train'" in err, err


# -- progress off a terminal (issue 26) ----------------------------------------------------------------------------
SLOW_SOURCE = """
import time
import numpy as np
from rrbench.plugin import Retriever, RetrieverSpec, hookimpl


class Slow(Retriever):
    def index(self, documents):
        self.n = len(documents)

    def score_all(self, query):
        time.sleep(0.35)
        return np.arange(self.n, dtype=float)


@hookimpl
def register_retrievers(register):
    register(RetrieverSpec(id="slow", loader="rrbench_slow:Slow", score_kind="similarity"))
"""


def _elapsed(lines: list[str]) -> list[float]:
    return [float(line.split("elapsed ")[1].split("s")[0]) for line in lines if "elapsed " in line]


def test_a_long_step_off_a_terminal_logs_plain_lines_at_the_interval(cli, tmp_path, mini_task):
    from rrbench.testing.fixtures import write_fake_plugin

    root = tmp_path / "site"
    write_fake_plugin(root, "rrbench-slow", "rrbench_slow", SLOW_SOURCE, ep_name="slow", version="0.1")
    env = {"PYTHONPATH": str(root), "RRBENCH_LOAD_PLUGINS": "slow", "RRBENCH_PROGRESS_INTERVAL": "0.5"}
    # 6 queries, 0.35 s each: about 2 s of retrieval, captured off a terminal
    result = cli("run", "--task", str(mini_task), "--retriever", "slow", "--output", str(tmp_path / "out"), env=env)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("rrbench: retrieving (slow)")]
    times = _elapsed(lines)
    assert len(times) >= 2, result.stderr
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.5 <= gap < 0.5 + 0.35 + 1.0 for gap in gaps), (gaps, result.stderr)  # one update late at most
    assert all("/6 queries" in line for line in lines), lines
    assert "ETA" in lines[0] and "queries/s" in lines[0]
    assert "done in" in lines[-1] and "\r" not in result.stderr  # plain lines, no bar redraws
    quiet = cli("run", "--task", str(mini_task), "--retriever", "slow", "--quiet", "--output", str(tmp_path / "q"),
                env=env)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


def test_the_default_interval_is_ten_seconds(monkeypatch, capsys):
    monkeypatch.delenv("RRBENCH_PROGRESS_INTERVAL", raising=False)
    clock = [100.0]
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(progress_mod, "_QUIET", False)
    with progress_mod.progress(total=35, desc="encoding sentences (x)", unit="text") as bar:
        assert isinstance(bar, progress_mod.LogLines)  # capsys' stderr is no terminal
        for _ in range(35):
            clock[0] += 1.0
            bar.update(1)
    lines = capsys.readouterr().err.splitlines()
    assert _elapsed(lines) == [10.0, 20.0, 30.0]
    assert lines[0] == "rrbench: encoding sentences (x): 10/35 texts (29%), 1.0 texts/s, elapsed 10.0s, ETA 25s"
    assert lines[-1] == "rrbench: encoding sentences (x): 35/35 texts, 1.0 texts/s, done in 35s"
