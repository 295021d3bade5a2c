"""Builders for test data and tiny models. Everything is generated locally and deterministically.

The mini task and the tiny models live in ``rrbench.tasks.mini`` and ``rrbench.models.tiny`` (``rrbench check`` needs
them too); this module re-exports them under their long-standing names for plugin authors' tests.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from rrbench.models.tiny import make_tiny_bert, make_tiny_bi_encoder, make_tiny_causal_lm
from rrbench.tasks.mini import (
    MINI_POSTS,
    MINI_QRELS,
    MINI_QUERIES,
    MINI_TRAIN_SPLITS,
    make_mini_task,
    make_train_task,
    mini_vocab,
    write_task,
)

__all__ = ["MINI_POSTS", "MINI_QRELS", "MINI_QUERIES", "MINI_TRAIN_SPLITS", "make_mini_task", "make_tiny_bert",
           "make_tiny_bi_encoder", "make_tiny_causal_lm", "make_train_task", "mini_vocab", "write_fake_plugin",
           "write_task"]

#: the old private name of :func:`rrbench.tasks.mini.mini_vocab`
_vocab = mini_vocab


def write_fake_plugin(root: str | Path, dist: str, module: str, source: str, ep_name: str | None = None,
                      version: str = "0.3", editable: bool = False) -> Path:
    """A minimal installed-looking distribution under ``root`` (put ``root`` on ``PYTHONPATH``): a module and a
    ``.dist-info`` with an ``rrbench`` entry point. Tests use it to exercise discovery without pip. ``editable``
    adds the PEP 610 ``direct_url.json`` of an editable install from ``root``."""

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[rrbench]\n{ep_name or module} = {module}\n", encoding="utf-8")
    if editable:
        (info / "direct_url.json").write_text(json.dumps({"url": root.resolve().as_uri(),
                                                          "dir_info": {"editable": True}}), encoding="utf-8")
    return root
