"""PNG figures: the sweep's Pareto front and a run's reliability diagram (matplotlib, Agg: no display needed).

Figures are written atomically like every other output, and matplotlib is imported only here, only when a figure is
asked for.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rrbench.util.io import atomic_write


def _figure() -> Any:
    import matplotlib  # lazy: optional: only plots use it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: optional: only plots use it

    return plt


def _save(fig: Any, path: Path) -> Path:
    """Write the figure atomically and release it (figures left open accumulate memory across a sweep's reports)."""
    import matplotlib.pyplot as plt  # lazy: optional: only plots use it

    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
        atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
        return path
    finally:
        plt.close(fig)


def pareto_png(path: Path, points: Sequence[tuple[float, float]], front: Sequence[tuple[float, float]],
               best: tuple[float, float] | None, max_fe: float, title: str, x_label: str = "false-evidence rate",
               budget_line: bool = True, feasible: Sequence[bool] | None = None) -> Path:
    """Scatter of every trial (x: FE rate or answer rate, y: nDCG@10), the trials within the FE budget apart from
    the others (``feasible``, one flag per point), the front as a step line, the budget, and the chosen trial. The x
    axis is a rate: it spans [0, 1] with ticks inside it."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    flags = list(feasible) if feasible is not None else [True] * len(points)
    for within, colour, alpha, label in ((False, "#7f8c8d", 0.3, "trials over the FE budget"),
                                         (True, "#2980b9", 0.45, f"trials within FE <= {max_fe:g}")):
        chosen = [p for p, f in zip(points, flags, strict=True) if f == within]
        if chosen:
            xs, ys = zip(*chosen, strict=True)
            ax.scatter(xs, ys, s=8, alpha=alpha, color=colour, label=f"{label} ({len(chosen)})")
    if front:
        fx, fy = zip(*sorted(front), strict=True)
        ax.plot(fx, fy, "-o", color="#c0392b", markersize=4, drawstyle="steps-post", label="Pareto front")
    if budget_line:
        ax.axvline(max_fe, color="#2c3e50", linestyle="--", linewidth=1, label=f"FE budget {max_fe:g}")
    if best is not None:
        ax.scatter([best[0]], [best[1]], s=110, marker="*", color="#27ae60", edgecolors="black", linewidths=0.5,
                   zorder=5, label="chosen (best.yaml)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_xticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_xlabel(x_label)
    ax.set_ylabel("nDCG@10")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def reliability_png(path: Path, bins: Sequence[dict[str, float]], title: str, ece: float | None = None) -> Path:
    """Observed frequency against mean predicted probability per equal-mass bin, with the diagonal."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    ax.plot([0, 1], [0, 1], linestyle="--", color="#95a5a6", linewidth=1, label="perfect calibration")
    if bins:
        xs = [b["mean_probability"] for b in bins]
        ys = [b["frequency"] for b in bins]
        ax.plot(xs, ys, "-o", color="#2980b9", markersize=4,
                label="equal-mass bins" + (f" (ECE {ece:.3f})" if ece is not None else ""))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed frequency of evidence")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)
