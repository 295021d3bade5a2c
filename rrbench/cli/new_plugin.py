"""``rrbench new-plugin NAME --kind KIND``: scaffold a plugin package that installs, registers and passes its tests.

The package holds a ``pyproject.toml`` (with version and the ``rrbench`` entry point), a working example component of
the chosen kind, tests that use rrbench's pytest plugin and the same conformance check as ``rrbench check``, a
README and a GitHub Actions workflow. ``tests/cli/test_new_plugin.py`` generates one package per kind, installs them and
runs their tests, so the templates cannot rot.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template
from typing import Any

import click

from rrbench.tasks.mini import write_task
from rrbench.util.errors import UsageError

KINDS = ("rerankers", "retrievers", "fusers", "tasks", "losses", "miners", "regimes", "calibrators", "commands")

# -- per kind: (spec class, registration, implementation module, test body) ----------------------------------------
_REGISTER = {
    "rerankers": ('RerankerSpec', '''    register(RerankerSpec(
        id="$name", loader="$module.component:Component",
        description="share of the query's words found in the sentence (replace with your model)",
        backend="custom", score_kind="similarity", interaction="pointwise", max_length=None,
    ))'''),
    "retrievers": ('RetrieverSpec', '''    register(RetrieverSpec(
        id="$name", loader="$module.component:Component",
        description="number of query words in the sentence (replace with your retriever)", score_kind="similarity",
    ))'''),
    "fusers": ('FuserSpec', '''    register(FuserSpec(
        id="$name", loader="$module.component:Component",
        description="sum of reciprocal ranks with a tunable constant (replace with your fusion)",
        option_schema=(OptionSpec("k0", "float", 10.0, low=1.0, high=100.0, help="rank constant"),),
    ))'''),
    "tasks": ('TaskRef', '''    folder = Path(__file__).parent / "tasks" / "$name"  # package data, shipped in the wheel
    register(TaskRef.from_path("$name", str(folder), description="example task (replace with your data)"))'''),
    "losses": ('LossSpec', '''    register(LossSpec(
        id="$name", loader="$module.component:make_loss", input_format="pointwise",
        description="binary cross-entropy with label smoothing (replace with your loss)",
        option_schema=(OptionSpec("smoothing", "float", 0.1, low=0.0, high=0.5, help="label smoothing"),),
    ))'''),
    "miners": ('MinerSpec', '''    register(MinerSpec(
        id="$name", loader="$module.component:Component",
        description="the first non-evidence sentences of the query's post (replace with your miner)",
    ))'''),
    "regimes": ('RegimeSpec', '''    register(RegimeSpec(
        id="$name", loader="rrbench.training.regimes:expand",
        description="a training recipe (replace with yours)",
        options={"loss": "bce", "miner": "n0-random", "epochs": 1.0, "negatives": 3},
    ))'''),
    "calibrators": ('CalibratorSpec', '''    register(CalibratorSpec(
        id="$name", loader="$module.component:Component",
        description="empirical CDF of the fitted statistics (replace with your calibrator)",
    ))'''),
}

_COMPONENT = {
    "rerankers": '''import numpy as np

from rrbench.plugin import PointwiseReranker


class Component(PointwiseReranker):
    def score_pairs(self, queries, documents):
        out = []
        for query, document in zip(queries, documents):
            words = set(query.lower().split())
            out.append(len(words & set(document.lower().split())) / max(len(words), 1))
        return np.asarray(out, dtype=np.float64)

    def cache_fingerprint(self):
        """Without weights or a revision, this is what lets the score cache keep this model's scores."""
        return {"algorithm": "$name-v1"}
''',
    "retrievers": '''import numpy as np

from rrbench.plugin import Retriever


class Component(Retriever):
    def index(self, documents):
        self.documents = [set(d.lower().split()) for d in documents]

    def score_all(self, query):
        words = set(query.lower().split())
        return np.asarray([len(words & d) for d in self.documents], dtype=np.float64)
''',
    "fusers": '''import numpy as np

from rrbench.plugin import Fuser, competition_ranks


class Component(Fuser):
    score_kind = "fused"

    def fuse(self, runs):
        fused = {}
        for ids, scores in runs:
            for doc, rank in zip(ids.tolist(), competition_ranks(scores).tolist()):
                fused[doc] = fused.get(doc, 0.0) + 1.0 / (self.options["k0"] + rank)
        order = sorted(fused, key=lambda doc: (-fused[doc], doc))
        return np.asarray(order, dtype=np.int64), np.asarray([fused[d] for d in order], dtype=np.float64)
''',
    "losses": '''import torch
from sentence_transformers.util import batch_to_device


class Loss(torch.nn.Module):
    def __init__(self, model, smoothing):
        super().__init__()
        self.model, self.smoothing = model, smoothing

    def forward(self, inputs, labels):
        queries, sentences = inputs
        features = batch_to_device(self.model.preprocess(list(zip(queries, sentences))), self.model.device)
        logits = self.model(features)["scores"].view(-1)
        target = labels.float().to(logits.device) * (1 - self.smoothing) + self.smoothing / 2
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, target)


def make_loss(model, smoothing=0.1, **_):
    return Loss(model, smoothing)
''',
    "calibrators": '''import numpy as np

from rrbench.plugin import Calibrator


class Component(Calibrator):
    def fit(self, x, y):
        self.sorted = np.sort(np.asarray(x, dtype=np.float64))
        return self

    def transform(self, x):
        return np.searchsorted(self.sorted, np.asarray(x, dtype=np.float64), side="right") / max(len(self.sorted), 1)
''',
    "miners": '''from rrbench.plugin import Miner, non_evidence


class Component(Miner):
    def mine(self, task, queries, k):
        return {query.query_id: non_evidence(task, query)[:k] for query in queries}
''',
}

_TESTS = {
    "rerankers": '''def test_conformance():
    from rrbench.testing import check_component

    report = check_component("rerankers", "$name")
    assert report["ok"], report


def test_scores_a_run(rrbench_mini_task, tmp_path):
    import rrbench

    record = rrbench.run(task=str(rrbench_mini_task), reranker="$plugin:$name", output=str(tmp_path / "out"),
                         show_progress=False, use_cache=False)
    assert record["config"]["rerankers"][0]["distribution"] == "$dist"
''',
    "retrievers": '''def test_conformance():
    from rrbench.testing import check_component

    report = check_component("retrievers", "$name")
    assert report["ok"], report
''',
    "fusers": '''def test_conformance():
    from rrbench.testing import check_component

    report = check_component("fusers", "$name", k0=5)
    assert report["ok"], report
''',
    "tasks": '''def test_task_loads_and_validates():
    import rrbench

    task = rrbench.get_task("$name")
    assert task.split_stats()["dev_select"]["queries"] == 3
''',
    "losses": '''def test_conformance():
    from rrbench.testing import check_component

    report = check_component("losses", "$name")
    assert report["ok"], report
''',
    "miners": '''def test_conformance():
    from rrbench.testing import check_component

    report = check_component("miners", "$name", k=2)
    assert report["ok"], report
''',
    "regimes": '''def test_conformance():
    from rrbench.testing import check_component

    report = check_component("regimes", "$name")
    assert report["ok"], report
''',
    "calibrators": '''def test_conformance():
    from rrbench.testing import check_component

    report = check_component("calibrators", "$name")
    assert report["ok"], report
''',
    "commands": '''def test_command_runs():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "rrbench.cli", "$name", "you"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello you from $dist"
''',
}

_COMMAND_HOOK = '''@hookimpl
def register_commands(cli):
    import click

    @cli.command("$name")
    @click.argument("who", default="world")
    def command(who):
        """An example command from $dist."""
        click.echo(f"hello {who} from $dist")
'''

_COMMON_TEST = '''"""Tests of $dist; rrbench's pytest plugin (fixtures rrbench_mini_task, rrbench_register, ...) is loaded
automatically."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_the_plugin_loads_cleanly():
    from rrbench.testing import plugin_info

    info = plugin_info("$plugin")
    assert info.status == "ok" and info.problems == [], (info.status, info.problems)
    assert info.distribution == "$dist"


'''

_PYPROJECT = '''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "rrbench plugin: $name ($kind)"
requires-python = ">=3.10"
dependencies = ["rrbench"]

[project.optional-dependencies]
test = ["pytest"]

[project.entry-points.rrbench]
$plugin = "$module"

[tool.setuptools]
packages = ["$module"]

[tool.setuptools.package-data]
$module = ["tasks/*/*"]
'''

_README = '''# $dist

An [rrbench](https://pypi.org/project/rrbench/) plugin that adds the $singular `$name` (entry point `$plugin`, so
it also answers to `$plugin:$name`).

```bash
pip install -e ".[test]"
rrbench plugins --trace     # shows $plugin loading and what it registered
$try_it
python -m pytest -q         # uses rrbench's pytest plugin and the same conformance checks as `rrbench check`
```

Edit `$module/__init__.py` (the registration: cheap spec objects only) and $impl. Keep `version` in
`pyproject.toml` current: result records name this distribution and version, and `rrbench reproduce` tells users
which one to install.
'''

_WORKFLOW = '''name: tests
on: [push, pull_request]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - run: pip install --extra-index-url https://download.pytorch.org/whl/cpu -e ".[test]"
      - run: python -m pytest -q
'''


def scaffold(name: str, kind: str, directory: Path) -> Path:
    """Write the package for plugin ``name`` of ``kind`` into ``directory/rrbench-NAME``; returns that folder."""

    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise UsageError(f"plugin name {name!r}: use lowercase letters, digits and '-', starting with a letter")
    if kind not in KINDS:
        raise UsageError(f"--kind {kind!r}: choose from {', '.join(KINDS)}")
    dist, module, plugin = f"rrbench-{name}", "rrbench_" + name.replace("-", "_"), name.replace("-", "_")
    root = Path(directory) / dist
    if root.exists():
        raise UsageError(f"{root} already exists; choose another name or --dir")
    values: dict[str, Any] = {"name": name, "dist": dist, "module": module, "plugin": plugin, "kind": kind,
                              "singular": kind[:-1] if kind != "losses" else "loss"}
    files: dict[str, str] = {}
    if kind == "commands":
        init = '"""$dist: hook implementations."""\n\nfrom rrbench.plugin import hookimpl\n\n\n' + _COMMAND_HOOK
    else:
        spec_class, body = _REGISTER[kind]
        imports = sorted({spec_class, "hookimpl", *(["OptionSpec"] if "OptionSpec(" in body else [])})
        head = "from pathlib import Path\n\n" if kind == "tasks" else ""
        init = (f'"""$dist: hook implementations. Only spec objects here; code is imported through the loader."""\n\n'
                f"{head}from rrbench.plugin import {', '.join(imports)}\n\n\n@hookimpl\n"
                f"def register_{kind}(register):\n{body}\n")
    files[f"{module}/__init__.py"] = init
    if kind in _COMPONENT:
        files[f"{module}/component.py"] = _COMPONENT[kind]
    files[f"tests/test_{module}.py"] = _COMMON_TEST + _TESTS[kind]
    files["pyproject.toml"] = _PYPROJECT
    values["impl"] = f"`{module}/component.py` (the code)" if kind in _COMPONENT else "its hook"
    values["try_it"] = {"rerankers": f"rrbench check {name}", "commands": f"rrbench {name}",
                        "tasks": f"rrbench tasks show {name}"}.get(kind, f"rrbench check {name} --kind {kind}")
    files["README.md"] = _README
    files[".github/workflows/tests.yml"] = _WORKFLOW
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(text).safe_substitute(values), encoding="utf-8")
    if kind == "tasks":
        _write_example_task(root / module / "tasks" / name, name)
    return root


def _write_example_task(folder: Path, name: str) -> None:
    posts = [
        {"post_id": "a", "sentences": ["Aspirin lowers the risk of heart attacks.", "The trial ran for ten years.",
                                       "Side effects were rare."]},
        {"post_id": "b", "sentences": ["Coffee keeps people awake.", "Caffeine blocks adenosine receptors.",
                                       "Tea was not studied."]},
    ]
    queries = [
        {"query_id": "q1", "post_id": "a", "text": "aspirin prevents heart attacks", "criterion_id": "c1"},
        {"query_id": "q2", "post_id": "b", "text": "caffeine affects alertness", "criterion_id": "c2"},
        {"query_id": "q3", "post_id": "b", "text": "tea improves sleep", "criterion_id": "c3"},
    ]
    qrels = [{"query_id": "q1", "sentence": 0, "grade": 2}, {"query_id": "q2", "sentence": 1, "grade": 2}]
    write_task(folder, posts, queries, qrels, id=name, license="CC0-1.0",
               description="example task written by rrbench new-plugin; replace with your data")


@click.command("new-plugin")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(KINDS), help="What the example component is.")
@click.option("--dir", "directory", default=".", show_default=True, help="Where to create rrbench-NAME/.")
def new_plugin(name: str, kind: str, directory: str) -> None:
    """Scaffold a plugin package: pyproject with entry point, example component, tests, README, CI workflow."""
    root = scaffold(name, kind, Path(directory))
    click.echo(f"created {root}; next: cd {root} && pip install -e '.[test]' && python -m pytest -q")
