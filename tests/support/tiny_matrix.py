"""What the matrix tests share: writing a matrix file, the tiny model and task they train on, and the Tier B block
that keeps a tiny cell to a few optimizer steps."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_matrix(directory: Path, text: str, name: str = "matrix.yaml") -> Path:
    """``text`` (indented as in a test's source) as a matrix file in ``directory``."""
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def tiny_assets(root: Path, task: Path) -> dict[str, str]:
    """The tiny BERT every matrix test trains, beside ``task``; the keys fill ``{task}`` and ``{bert}``."""
    from rrbench.testing.fixtures import make_tiny_bert

    return {"task": str(task), "bert": str(make_tiny_bert(root / "bert", seed=1))}


def tier_b(steps: int, evaluations: int, enqueue: str) -> str:
    """A ``tier_b:`` block (6-space indented, as under ``budgets:``) with fixed tiny-model options and the enqueued
    learning rates ``enqueue`` (``{lr: 0.001}, ...``), so that trials are fixed, not sampled. Braces come doubled,
    because the tests fill their matrix templates in with ``str.format``."""
    block = textwrap.indent(textwrap.dedent(f"""\
        tier_b:
          pruner: none
          evaluations: {evaluations}
          sample: false
          fixed: {{max_steps: {steps}, batch_size: 2, max_length: 32, negatives: 2, warmup: 0.0, epochs: 1,
                  loss.pos_weight: null, threads: 1}}
          space: {{lr: {{low: 0.0001, high: 0.01, log: true}}}}
          enqueue: [{enqueue}]
        """), "      ")
    return block.replace("{", "{{").replace("}", "}}")
