"""The HTML board's "Across tasks" page (:mod:`rrbench.leaderboard.cross_task`, drawn for a browser).

A summary table answers the two questions at a glance (fails on which tasks? holds everywhere?), and each system
then gets a forest plot of its per-task difference to BM25 with the 95% interval against the zero line and the
non-inferiority margin, because "holds everywhere" is a statement about where those intervals sit, and a table of
numbers hides it. Every cell links the record it was derived from and the pinned BM25 record it was compared with.
"""

from __future__ import annotations

from collections.abc import Sequence

from rrbench.leaderboard.cross_task import CrossSystem, TaskCell
from rrbench.leaderboard.html_parts import esc, num, page_html
from rrbench.measures.significance import ALPHA

PAGE = "across-tasks.html"
FAILS, HOLDS, UNDECIDED, NO_BASE = "#b3261e", "#1b7a3a", "#5a6375", "#c9d0dc"


def _verdict(cell: TaskCell, alpha: float, reference: bool = False) -> tuple[str, str]:
    """Colour and words for one task's cell."""
    if reference:
        return UNDECIDED, "the BM25 reference"
    if cell.delta is None:
        return NO_BASE, "no pinned BM25 record"
    if cell.p_worse_holm is not None and cell.p_worse_holm < alpha:
        return FAILS, "worse than BM25 (Holm)"
    if cell.p_noninferior is not None and cell.p_noninferior < alpha:
        return HOLDS, "non-inferior"
    return UNDECIDED, "not shown non-inferior"


def svg_forest(cells: Sequence[TaskCell], margin: float, alpha: float, title: str) -> str:
    """Per task, the difference to BM25 and its interval, with the zero line and the line at -margin."""
    shown = [c for c in cells if c.delta is not None and c.ci is not None]
    if not shown:
        return "<p class=\"note\">No task of this system has a pinned BM25 record to compare with.</p>"
    width, row, left, right, top = 560, 28, 190, 30, 26
    height = top + row * len(shown) + 34
    low = min([-margin, *(c.ci[0] for c in shown)])  # type: ignore[index]
    high = max([0.0, *(c.ci[1] for c in shown)])  # type: ignore[index]
    spread = (high - low) * 0.08 or 0.01
    low, high = low - spread, high + spread

    def sx(x: float) -> float:
        return left + (x - low) / (high - low) * (width - left - right)

    parts = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" "
             f"aria-label=\"{esc(title)}\">",
             f"<line x1=\"{sx(0):.1f}\" x2=\"{sx(0):.1f}\" y1=\"{top - 8}\" y2=\"{height - 30}\" stroke=\"#1d2330\"/>",
             f"<line x1=\"{sx(-margin):.1f}\" x2=\"{sx(-margin):.1f}\" y1=\"{top - 8}\" y2=\"{height - 30}\" "
             f"stroke=\"{FAILS}\" stroke-dasharray=\"4 3\"/>",
             f"<text x=\"{sx(0):.1f}\" y=\"{top - 12}\" font-size=\"10\" text-anchor=\"middle\">BM25</text>",
             f"<text x=\"{sx(-margin):.1f}\" y=\"{height - 18}\" font-size=\"10\" text-anchor=\"middle\" "
             f"fill=\"{FAILS}\">-{margin:g}</text>"]
    for i, cell in enumerate(shown):
        y = top + row * i + row / 2
        lo, hi = cell.ci  # type: ignore[misc]
        colour, words = _verdict(cell, alpha)
        parts += [f"<text x=\"{left - 8}\" y=\"{y + 4:.1f}\" font-size=\"11\" text-anchor=\"end\">"
                  f"{esc(cell.task[:30])}</text>",
                  f"<line x1=\"{sx(lo):.1f}\" x2=\"{sx(hi):.1f}\" y1=\"{y:.1f}\" y2=\"{y:.1f}\" stroke=\"{colour}\" "
                  f"stroke-width=\"2\"/>",
                  f"<circle cx=\"{sx(float(cell.delta)):.1f}\" cy=\"{y:.1f}\" r=\"5\" fill=\"{colour}\"><title>"  # type: ignore[arg-type]
                  f"{esc(cell.task)}: Δ {cell.delta:+.4f} [{lo:+.4f}, {hi:+.4f}]; {words}</title></circle>"]
    parts.append(f"<text x=\"{(left + width - right) / 2:.1f}\" y=\"{height - 4}\" font-size=\"11\" "
                 f"text-anchor=\"middle\">Δ main score vs BM25 (95% bootstrap interval)</text></svg>")
    return "".join(parts)


def _anchor(index: int) -> str:
    return f"system-{index + 1}"


def _record_link(folder: str | None, text: str) -> str:
    return text if folder is None else f"<a href=\"records/{esc(folder)}.html\">{text}</a>"


def _summary(systems: Sequence[CrossSystem], alpha: float) -> list[str]:
    out = ["<table id=\"board\"><thead><tr><th>system</th><th>split</th><th data-type=\"num\">tasks</th>"
           "<th>fails on</th><th>holds everywhere</th><th data-type=\"num\">worst Δ BM25</th>"
           "<th data-type=\"num\">mean over tasks</th></tr></thead><tbody>"]
    for i, system in enumerate(systems):
        holds = system.holds_everywhere(alpha)
        worst = system.worst_delta()
        out.append(f"<tr><td><a href=\"#{_anchor(i)}\">{esc(system.name)}</a></td><td>{esc(system.split)}</td>"
                   f"<td class=\"num\" data-sort=\"{len(system.cells)}\">{len(system.cells)}</td>"
                   f"<td>{esc(', '.join(system.fails_on(alpha)) or 'none')}</td>"
                   f"<td>{'—' if holds is None else ('yes' if holds else 'no')}</td>"
                   f"<td class=\"num\" data-sort=\"{'' if worst is None else worst}\">"
                   f"{'—' if worst is None else f'{worst:+.4f}'}</td>"
                   f"<td class=\"num\" data-sort=\"{system.mean() or ''}\">{num(system.mean())}</td></tr>")
    return [*out, "</tbody></table>"]


def cross_task_page(systems: Sequence[CrossSystem], margin: float, alpha: float = ALPHA) -> str:
    """The whole page: the summary, then one section per system."""
    out = ["<p><a href=\"index.html\">← all boards</a></p>", "<h1>Across tasks</h1>",
           f"<p class=\"note\">Systems with verified records on two or more tasks of one split. Δ BM25: difference of "
           f"the main score to BM25 pinned on each task (same split, pool size and BM25 options), with a bootstrap "
           f"95% interval. <strong>Fails on</strong>: one-sided paired sign-flip test, Holm over the system's tasks, "
           f"adjusted p &lt; {alpha}. <strong>Holds everywhere</strong>: non-inferior to BM25 by {margin:g} on every "
           f"task (an intersection-union test, each task at {alpha}; the margin is the board's setting in "
           f"<code>board.yaml</code>). A mean over a few tasks says little about the next one; see "
           f"docs/leaderboard.md.</p>", *_summary(systems, alpha)]
    for i, system in enumerate(systems):
        holds = system.holds_everywhere(alpha)
        out += [f"<h2 id=\"{_anchor(i)}\">{esc(system.name)} · {esc(system.split)}</h2>",
                f"<p>fails on: {esc(', '.join(system.fails_on(alpha)) or 'none')}; holds everywhere: "
                f"{'—' if holds is None else ('yes' if holds else 'no')}; mean over tasks {num(system.mean())}</p>",
                ("<p class=\"note\">BM25 alone: the reference the other systems are compared with on each task.</p>"
                 if system.reference else svg_forest(system.cells, margin, alpha, f"{system.name}: Δ BM25 per task")),
                "<table><tr><th>task</th><th>score</th><th>FE</th><th>BM25</th><th>Δ BM25</th><th>95% CI</th>"
                "<th>p worse (Holm)</th><th>p non-inferior</th><th>queries</th><th>verdict</th></tr>"]
        for c in system.cells:
            ci = "—" if c.ci is None else f"[{c.ci[0]:+.4f}, {c.ci[1]:+.4f}]"
            colour, words = _verdict(c, alpha, system.reference)
            out.append(f"<tr><td>{_record_link(c.record, esc(c.task))}</td><td class=\"num\">{num(c.value)}</td>"
                       f"<td class=\"num\">{num(c.fe, 2)}</td>"
                       f"<td class=\"num\">{_record_link(c.bm25_record, num(c.bm25))}</td>"
                       f"<td class=\"num\">{'—' if c.delta is None else f'{c.delta:+.4f}'}</td><td>{ci}</td>"
                       f"<td class=\"num\">{num(c.p_worse_holm, 3)}</td><td class=\"num\">{num(c.p_noninferior, 3)}"
                       f"</td><td class=\"num\">{c.queries or '—'}</td><td style=\"color:{colour}\">{esc(words)}</td>"
                       "</tr>")
        out.append("</table>")
    return page_html("Across tasks · rrbench leaderboard", "\n".join(out), script=True)
