"""Encoding many texts in chunks under one progress bar, in the order one library call would batch them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rrbench.util.progress import progress


def encode_with_progress(encode: Callable[[list[str]], Any], texts: Sequence[str], batch_size: int, desc: str,
                         join: Callable[[list[Any]], Any]) -> Any:
    """Encode ``texts`` in chunks under one rrbench progress bar, returning the results in input order.

    The texts are visited longest first, as sentence-transformers orders one ``encode`` call, in chunks that are a
    whole number of batches: the batches (and so the padded shapes) match a single call's. ``encode`` gets a list of
    texts and returns an array-like or sparse matrix of rows; ``join`` stacks the chunk results.
    """

    order = np.argsort([-len(t) for t in texts], kind="stable")
    chunk = max(1, batch_size) * 16
    parts = []
    with progress(len(texts), desc, unit="text") as bar:
        for start in range(0, len(order), chunk):
            idx = order[start:start + chunk]
            parts.append(encode([texts[i] for i in idx]))
            bar.update(len(idx))
    if not parts:
        return encode([])
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.arange(len(order))
    return join(parts)[inverse]
