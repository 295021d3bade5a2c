"""One progress bar helper for every step that can take more than a few seconds (encoding, candidate generation,
reranking, training-time evaluation, sweeps).

Why one helper: the bars must look alike, carry a label, go to stderr, and obey one switch. ``--quiet`` (or
:func:`set_quiet`) silences rrbench's bars *and* the libraries' own (transformers' "Loading weights",
huggingface_hub downloads, sentence-transformers' "Batches"), whether or not stderr is a terminal. Without it a bar
shows on a terminal; off a terminal (CI and Slurm logs, ``nohup``) a long step logs one plain line about every 10 s
instead (stage, done/total, rate, ETA), so a log shows life without a carriage-return mess.

Usage::

    with progress(total=len(texts), desc="encoding sentences (minilm-l6)", unit="sent") as bar:
        for batch in batches:
            ...
            bar.update(len(batch))
"""

from __future__ import annotations

import os
import sys
import time
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


#: Seconds between plain progress lines when stderr is not a terminal; ``RRBENCH_PROGRESS_INTERVAL`` overrides it.
LOG_INTERVAL_S = 10.0


def log_interval() -> float:
    """The interval of plain progress lines (``$RRBENCH_PROGRESS_INTERVAL`` seconds, default 10)."""
    raw = os.environ.get("RRBENCH_PROGRESS_INTERVAL", "").strip()
    try:
        value = float(raw) if raw else LOG_INTERVAL_S
    except ValueError:
        return LOG_INTERVAL_S
    return value if value > 0 else LOG_INTERVAL_S


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 90 else f"{minutes // 60}h{minutes % 60:02d}m"


class LogLines:
    """Progress for logs (CI, Slurm, ``nohup``): a plain line about every :func:`log_interval` seconds, never a bar.

    ``rrbench: reranking (minilm-l6): 600/1494 pairs (40%), 61.2 pairs/s, elapsed 10.0s, ETA 15s``. Nothing is printed
    for a step shorter than one interval, so quick commands stay as quiet as before; a step that printed lines ends
    with a ``done`` line. It answers the calls rrbench makes on a tqdm bar (``update``, context manager, ``close``).
    """

    def __init__(self, total: int | None, desc: str, unit: str, interval: float | None = None) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.interval = interval if interval is not None else log_interval()
        self.n = 0
        self.started = time.monotonic()
        self._next = self.started + self.interval
        self._printed = False

    def __enter__(self) -> LogLines:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close(finished=exc[0] is None)

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now >= self._next:
            self._line(now)
            self._next = now + self.interval

    def _line(self, now: float, done: bool = False) -> None:
        elapsed = now - self.started
        rate = self.n / elapsed if elapsed > 0 else 0.0
        units = self.unit[:-1] + "ies" if self.unit.endswith("y") else self.unit + "s"
        count = f"{self.n}/{self.total} {units}" if self.total else f"{self.n} {units}"
        if self.total and not done:
            count += f" ({100.0 * self.n / self.total:.0f}%)"
        speed = f"{rate:.1f} {units}/s" if rate < 1000 else f"{rate:,.0f} {units}/s"
        tail = f"done in {_duration(elapsed)}" if done else f"elapsed {elapsed:.1f}s"
        if not done and self.total and rate > 0:
            tail += f", ETA {_duration((self.total - self.n) / rate)}"
        print(f"rrbench: {self.desc}: {count}, {speed}, {tail}", file=sys.stderr, flush=True)
        self._printed = True

    def close(self, finished: bool = True) -> None:
        if self._printed and finished:
            self._line(time.monotonic(), done=True)
        self._printed = False

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        """Accepted for tqdm compatibility; plain lines carry no postfix."""


def progress(total: int | None = None, desc: str = "", enabled: bool | None = None, unit: str = "it",
             **kwargs: Any) -> Any:
    """Progress of a long step, on stderr; use it as a context manager and ``update(n)``.

    ``enabled``: None shows a tqdm bar on a terminal and, off a terminal, a plain line about every 10 s
    (:class:`LogLines`); False shows nothing; True always a bar. ``--quiet`` (:func:`set_quiet`) silences both."""

    if bars_enabled(enabled):
        return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True, file=sys.stderr, **kwargs)
    if _QUIET or enabled is False:
        return tqdm(total=total, desc=desc, unit=unit, disable=True, file=sys.stderr, **kwargs)
    return LogLines(total, desc, unit)
