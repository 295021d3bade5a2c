"""The package as users install it: a wheel built from this tree, installed (not editable) into a fresh
environment, runs ``rrbench --help``, finds its built-in tasks and scores the mini task.

An editable install hides packaging mistakes (a subpackage missing from ``pyproject.toml``'s explicit list, task data
left out of the wheel); this test does not. The fresh environment reuses this one's dependencies through a path file
that lists their folders without running their ``.pth`` hooks, so the editable rrbench of the development
environment stays invisible.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from rrbench.testing import make_mini_task

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    work = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(work / "dist"), str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    wheels = list((work / "dist").glob("rrbench-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    # every folder this interpreter imports from, except any holding an rrbench source tree (the editable install)
    parents = [p for p in dict.fromkeys([*sys.path, *site.getsitepackages(), sysconfig.get_paths()["purelib"]])
               if p and Path(p).is_dir() and not (Path(p) / "rrbench").is_dir()]
    (purelib / "_parent_dependencies.pth").write_text("".join(f"{p}\n" for p in parents), encoding="utf-8")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                              "--no-index", str(wheels[0])], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    return env_dir


def _rrbench(env_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RRBENCH_LOAD_PLUGINS")}
    return subprocess.run([str(env_dir / "bin" / "rrbench"), *args], capture_output=True, text=True, cwd=cwd,
                          env={**environ, "RRBENCH_DISABLE_PLUGINS": "sklearn,pyserini"})


def test_the_installed_wheel_is_what_runs(wheel_env, tmp_path):
    where = subprocess.run([str(wheel_env / "bin" / "python"), "-c", "import rrbench, sys; print(rrbench.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout.strip()
    assert str(wheel_env) in where and str(ROOT) not in where


def test_help_and_the_builtin_tasks_work_from_the_wheel(wheel_env, tmp_path):
    helped = _rrbench(wheel_env, "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "run" in helped.stdout and "leaderboard" in helped.stdout
    shown = _rrbench(wheel_env, "tasks", "show", "scifact-evidence", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["splits"]["dev_select"]["queries"] > 0


def test_a_mini_task_run_from_the_wheel(wheel_env, tmp_path):
    task = make_mini_task(tmp_path / "mini-task")
    out = tmp_path / "out"
    result = _rrbench(wheel_env, "run", "--task", str(task), "--output", str(out), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "results.json").read_text())
    assert 0.0 < record["metrics"]["nDCG@10"] <= 1.0
