"""One progress bar helper for every step that can take more than a few seconds (encoding, candidate generation,
reranking, training-time evaluation, sweeps).

Why one helper: the bars must look alike, carry a label, go to stderr, and obey one switch. ``--quiet`` (or
:func:`set_quiet`) silences rrbench's bars *and* the libraries' own (transformers' "Loading weights",
huggingface_hub downloads, sentence-transformers' "Batches"), whether or not stderr is a terminal; without it a bar
shows only on a terminal, so logs and CI output stay clean.

Usage::

    with progress(total=len(texts), desc="encoding sentences (minilm-l6)", unit="sent") as bar:
        for batch in batches:
            ...
            bar.update(len(batch))
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.auto import tqdm

_QUIET = False


def set_quiet(quiet: bool = True) -> None:
    """Silence (or re-enable) every progress bar of this process, rrbench's and the libraries'."""
    global _QUIET
    _QUIET = bool(quiet)
    if quiet:
        # read by huggingface_hub (and through it transformers) at import; set before they load
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    libraries_quiet(quiet)


def libraries_quiet(quiet: bool) -> None:
    """Apply the switch to libraries that are already imported (never imports them: the CLI stays light)."""
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars  # lazy: heavy

        (disable_progress_bars if quiet else enable_progress_bars)()
    if "transformers" in sys.modules:
        import transformers  # lazy: heavy: pulls in torch

        logging = transformers.utils.logging
        (logging.disable_progress_bar if quiet else logging.enable_progress_bar)()


def bars_enabled(requested: bool | None = None) -> bool:
    """Whether a bar shows: never when quiet or ``requested`` is False; with None, only on a terminal."""
    if _QUIET or requested is False:
        return False
    if requested is True:
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress(total: int | None = None, desc: str = "", enabled: bool | None = None, unit: str = "it",
             **kwargs: Any) -> Any:
    """A labelled tqdm bar on stderr (a no-op bar when disabled); use it as a context manager and ``update(n)``.
    ``enabled``: None shows it on a terminal only; False never; True always (unless quiet)."""

    return tqdm(total=total, desc=desc, unit=unit, disable=not bars_enabled(enabled), leave=False,
                dynamic_ncols=True, file=sys.stderr, **kwargs)
