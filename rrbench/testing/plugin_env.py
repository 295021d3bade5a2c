"""A throwaway environment to install plugin packages into, cheaply, for tests of documentation and templates.

Why not a plain ``venv --system-site-packages``: run from inside a virtual environment, that sees the *base*
interpreter's packages, not the current environment's (where rrbench, torch and the test tools live). So the new
venv gets a ``.pth`` file that adds the current environment's site-packages (with their own ``.pth`` files, which
editable installs need) -- torch and the rest are never installed again -- and packages are installed into it with
``pip install --no-deps --no-build-isolation`` (seconds, offline).
"""

from __future__ import annotations

import os
import site
import subprocess
import sysconfig
import venv
from pathlib import Path
from typing import Any


class PluginEnv:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        venv.EnvBuilder(system_site_packages=True, with_pip=False, symlinks=os.name != "nt").create(self.root)
        self.python = self.root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        purelib = subprocess.run([str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        parents = [p for p in dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"]])
                   if Path(p).is_dir()]
        lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in parents)
        (Path(purelib) / "_rrbench_parent_env.pth").write_text(lines, encoding="utf-8")

    def install(self, *package_dirs: str | Path) -> subprocess.CompletedProcess:
        """``pip install --no-deps --no-build-isolation`` (the parent's pip and setuptools, no network)."""
        return self.run("-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                        "--disable-pip-version-check", *map(str, package_dirs), check=True)

    def run(self, *args: str, cwd: str | Path | None = None, check: bool = False,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        full = {k: v for k, v in os.environ.items() if k not in ("RRBENCH_LOAD_PLUGINS", "PYTHONPATH")}
        full.update(env or {})  # without a pin by default: the point is to see the installed plugin
        result = subprocess.run([str(self.python), *args], capture_output=True, text=True, cwd=cwd, env=full,
                                check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def rrbench(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess:
        return self.run("-m", "rrbench.cli", *args, **kwargs)
