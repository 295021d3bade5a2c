"""``rrbench leaderboard build --html DIR``: the leaderboard as a static site that works from ``file://``.

No server, no CDN, no network: every page carries its styles and script inline, and the plots are SVG drawn here.
The rows, intervals and tie marks are exactly those of the README (:func:`rrbench.leaderboard.board.build_rows`), so the two
views cannot disagree. Pages:

* ``index.html``: one link per task version and split (superseded boards marked);
* ``<task>@<version>--<split>.html``: a sortable (click a header), filterable table, a Pareto plot of nDCG@10 against
  the false-evidence rate, and one of nDCG@10 against pairs/s drawn separately for each device and CPU, because
  throughput is self-reported and only comparable on the same hardware; where ``leaderboard check --time`` has run,
  the verifier's own pairs/s (and the machine it was measured on) stands beside the claimed figure;
* ``records/<folder>.html``: a record's claims and provenance, the histogram of its per-query main score, and its
  reproducing command;
* ``across-tasks.html``: the cross-task view (:mod:`rrbench.leaderboard.html_cross_task`).

The page frame, its style and the sorting script are in :mod:`rrbench.leaderboard.html_parts`.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

from rrbench.leaderboard.board import (
    Entry,
    Row,
    build_rows,
    collect,
    notes,
    vs_leader,
)
from rrbench.leaderboard.cross_task import cross_task
from rrbench.leaderboard.html_cross_task import PAGE, cross_task_page
from rrbench.leaderboard.html_parts import esc, num, page_html
from rrbench.leaderboard.settings import read_settings
from rrbench.leaderboard.timing import default_timings_path, measured_label, read_timings
from rrbench.util.errors import UsageError
from rrbench.util.io import atomic_dir, atomic_write_text, strict_json_dumps


def page_name(board: str, split: str) -> str:
    return f"{board}--{split}.html"


# -- plots -----------------------------------------------------------------------------------------------------------
def pareto_front(points: Sequence[tuple[float, float]], maximise_x: bool) -> list[int]:
    """Indices of the points not dominated by another (y is always maximised)."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = False
        for j, (x2, y2) in enumerate(points):
            better_x = x2 >= x if maximise_x else x2 <= x
            strictly = (x2 > x if maximise_x else x2 < x) or y2 > y
            if j != i and better_x and y2 >= y and strictly:
                dominated = True
                break
        if not dominated:
            front.append(i)
    return front


def svg_scatter(points: Sequence[tuple[float, float, str]], x_label: str, y_label: str, maximise_x: bool,
                title: str) -> str:
    """A small SVG scatter plot with the Pareto front drawn as a line; labels as tooltips and text."""
    width, height, pad = 520, 300, 60
    if not points:
        return f"<p class=\"note\">{esc(title)}: no records with both values.</p>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    spread = (x1 - x0) * 0.08 if x1 > x0 else max(abs(x0) * 0.5, 0.05)
    x0, x1 = x0 - spread, x1 + spread
    if min(xs) >= 0:
        x0 = max(0.0, x0)  # rates and throughputs are never negative
    y0, y1 = (y0 - 0.05, y1 + 0.05) if y0 == y1 else (y0 - (y1 - y0) * 0.1, y1 + (y1 - y0) * 0.1)

    def sx(x: float) -> float:
        return pad + (x - x0) / (x1 - x0) * (width - 2 * pad)

    def sy(y: float) -> float:
        return height - pad - (y - y0) / (y1 - y0) * (height - 2 * pad)

    front = sorted(pareto_front([(p[0], p[1]) for p in points], maximise_x), key=lambda i: points[i][0])
    parts = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" "
             f"aria-label=\"{esc(title)}\">",
             f"<rect x=\"{pad}\" y=\"{pad}\" width=\"{width - 2 * pad}\" height=\"{height - 2 * pad}\" "
             "fill=\"#fafbfd\" stroke=\"#c9d0dc\"/>"]
    for frac in (0.0, 0.5, 1.0):
        xv, yv = x0 + frac * (x1 - x0), y0 + frac * (y1 - y0)
        parts.append(f"<text x=\"{sx(xv):.1f}\" y=\"{height - pad + 16}\" font-size=\"11\" "
                     f"text-anchor=\"middle\">{xv:.3g}</text>")
        parts.append(f"<text x=\"{pad - 6}\" y=\"{sy(yv) + 4:.1f}\" font-size=\"11\" text-anchor=\"end\">"
                     f"{yv:.3f}</text>")
    parts.append(f"<text x=\"{width / 2}\" y=\"{height - 10}\" font-size=\"12\" text-anchor=\"middle\">"
                 f"{esc(x_label)}</text>")
    parts.append(f"<text x=\"12\" y=\"{height / 2}\" font-size=\"12\" text-anchor=\"middle\" "
                 f"transform=\"rotate(-90 12 {height / 2})\">{esc(y_label)}</text>")
    if len(front) > 1:
        path = " ".join(f"{sx(points[i][0]):.1f},{sy(points[i][1]):.1f}" for i in front)
        parts.append(f"<polyline points=\"{path}\" fill=\"none\" stroke=\"#1b7a3a\" stroke-dasharray=\"4 3\"/>")
    for i, (x, y, label) in enumerate(points):
        colour = "#1b7a3a" if i in front else "#1f5fbf"
        parts.append(f"<circle cx=\"{sx(x):.1f}\" cy=\"{sy(y):.1f}\" r=\"5\" fill=\"{colour}\"><title>{esc(label)}: "
                     f"{x:.4g}, {y:.4f}</title></circle>")
        right_half = sx(x) > width / 2  # label towards the plot's centre so that it stays inside the picture
        parts.append(f"<text x=\"{sx(x) + (-7 if right_half else 7):.1f}\" y=\"{sy(y) - 6:.1f}\" font-size=\"10\" "
                     f"text-anchor=\"{'end' if right_half else 'start'}\">{esc(label[:48])}</text>")
    parts.append("</svg>")
    return "".join(parts)


def svg_histogram(values: Sequence[float], label: str, bins: int = 10) -> str:
    """Histogram of per-query values in [0, 1]."""
    width, height, pad = 420, 200, 36
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(float(v) * bins)))] += 1
    top = max(counts) or 1
    bar = (width - 2 * pad) / bins
    parts = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" "
             f"aria-label=\"histogram of per-query {esc(label)}\">"]
    for i, count in enumerate(counts):
        h = (height - 2 * pad) * count / top
        parts.append(f"<rect x=\"{pad + i * bar + 1:.1f}\" y=\"{height - pad - h:.1f}\" width=\"{bar - 2:.1f}\" "
                     f"height=\"{h:.1f}\" fill=\"#1f5fbf\"><title>{i / bins:.1f}-{(i + 1) / bins:.1f}: {count}"
                     "</title></rect>")
        if count:
            parts.append(f"<text x=\"{pad + (i + 0.5) * bar:.1f}\" y=\"{height - pad - h - 3:.1f}\" font-size=\"10\""
                         f" text-anchor=\"middle\">{count}</text>")
    for i in range(0, bins + 1, 2):
        parts.append(f"<text x=\"{pad + i * bar:.1f}\" y=\"{height - pad + 14}\" font-size=\"10\" "
                     f"text-anchor=\"middle\">{i / bins:.1f}</text>")
    parts.append(f"<text x=\"{width / 2}\" y=\"{height - 6}\" font-size=\"11\" text-anchor=\"middle\">per-query "
                 f"{esc(label)} ({len(values)} queries)</text></svg>")
    return "".join(parts)


def hardware_key(provenance: Mapping[str, Any]) -> str:
    """Device and CPU a record's speed was measured on: throughput is comparable only within one such group."""
    hw = provenance.get("hardware") or {}
    device = (provenance.get("run_options") or {}).get("device") or ("cuda" if hw.get("gpu") else "cpu")
    parts = [str(device), str(hw.get("gpu") or hw.get("cpu") or "unknown CPU")]
    capability = hw.get("cpu_capability") or hw.get("torch_cpu_capability")
    if capability:
        parts.append(str(capability))
    if hw.get("cpus_usable"):
        parts.append(f"{hw['cpus_usable']} CPUs")
    return " · ".join(parts)


# -- pages -----------------------------------------------------------------------------------------------------------
def _is_local_path(text: str) -> bool:
    return text.startswith(("/", "~")) or (len(text) > 2 and text[1] == ":" and text[2] in "/\\")


def _portable_path(text: str) -> str:
    """``/work/runs/train-x`` -> ``<local>/train-x``: where one machine kept a file says nothing to a reader; the
    weights are identified by their sha256 in the claims."""
    return f"<local>/{PurePath(text.replace(chr(92), '/')).name}"


def portable(value: Any) -> Any:
    """A record's claims or provenance as a record page shows them: absolute local paths replaced by their last part."""
    if isinstance(value, Mapping):
        return {k: portable_command(v) if k == "command" and isinstance(v, str) else portable(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v) for v in value]
    if isinstance(value, str) and _is_local_path(value):
        return _portable_path(value)
    return value


def portable_command(command: str) -> str:
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    return shlex.join(_portable_path(w) if _is_local_path(w) else w for w in words)


def _record_page(row: Row, entry: Entry, board: str, split: str) -> str:
    record = entry.record
    main = entry.main_score
    values = [float(v[main]) for v in entry.verified.per_query.values() if main in v]
    body = [f"<p><a href=\"../{esc(page_name(board, split))}\">← {esc(board)} · {esc(split)}</a></p>",
            f"<h1>{esc(entry.identity)}</h1>",
            f"<p>{esc(main)} <strong>{num(entry.main_value)}</strong>; config hash "
            f"<code>{esc(record.config_hash)}</code>; {esc(notes(entry))}; {esc(entry.verified.status)}</p>",
            "<h2>Reproduce</h2>", f"<pre id=\"command\">rrbench reproduce {esc(entry.path.parent.name)}</pre>",
            "<p>Local paths show their last part only (<code>&lt;local&gt;/NAME</code>); weights are identified by "
            "their sha256 in the claims.</p>",
            "<h2>Per-query distribution</h2>", svg_histogram(values, main),
            "<h2>Metrics (re-derived by the verifier)</h2>",
            f"<pre>{esc(strict_json_dumps(entry.verified.metrics))}</pre>",
            "<h2>Claims (hashed configuration)</h2>",
            f"<pre id=\"claims\">{esc(strict_json_dumps(portable(record.config.model_dump(mode='json'))))}</pre>",
            "<h2>Provenance (as the submitter reports it)</h2>",
            f"<pre>{esc(strict_json_dumps(portable(record.provenance.model_dump(mode='json'))))}</pre>"]
    return page_html(f"{entry.identity} · {board} · {split}", "\n".join(body))


def _board_page(board: str, split: str, rows: Sequence[Row], newer: str | None, method: str,
                timings: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    main = rows[0].main_score
    head = ["#", "System", main, "95% CI", "vs leader", "RR@10", "R@10", "FalseEvid", "pairs/s", "Notes"]
    types = ["num", "text", "num", "num", "num", "num", "num", "num", "num", "text"]
    out = ["<p><a href=\"index.html\">← all boards</a></p>", f"<h1>{esc(board)} · {esc(split)}</h1>"]
    if newer:
        out.append(f"<p class=\"superseded\">Superseded by {esc(newer)}: these records stay readable; new submissions "
                   "go to the new board.</p>")
    test = "Holm-corrected paired sign-flip tests" if method == "holm" else "the randomised Tukey HSD test"
    out.append(f"<p class=\"note\">Main score {esc(main)} with a 95% bootstrap interval over queries. Every row is "
               f"compared with the leader by {test}; <span class=\"tie\">≈ tied</span> marks an adjusted p ≥ 0.05. "
               "Click a column header to sort, type to filter.</p>")
    out.append(f"<p><input id=\"filter\" type=\"search\" placeholder=\"filter systems…\" aria-label=\"filter\"> "
               f"<span class=\"note\"><span id=\"shown\">{len(rows)}</span> of {len(rows)} rows</span></p>")
    out.append("<table id=\"board\"><thead><tr>" + "".join(
        f"<th data-type=\"{t}\">{esc(h)}</th>" for h, t in zip(head, types, strict=True)) + "</tr></thead><tbody>")
    for i, row in enumerate(rows):
        value = row.metric(main)
        shown = num(value) + (f" ± {num(row.std)}" if row.std is not None else "")
        ci = "—" if row.ci is None else f"[{num(row.ci[0])}, {num(row.ci[1])}]"
        mark = vs_leader(row, i)
        mark_html = (f"<span class=\"leader\">{esc(mark)}</span>" if i == 0 else
                     f"<span class=\"tie\">{esc(mark)}</span>" if row.tied else esc(mark))
        rate = row.first.record.provenance.pairs_per_s if len(row.entries) == 1 else None
        links = ", ".join(f"<a href=\"records/{esc(e.path.parent.name)}.html\">{esc(e.identity if len(row.entries) == 1 else e.path.parent.name[-8:])}</a>"
                          for e in row.entries)
        fe = row.metric("false_evidence_rate")
        cells = [(str(i + 1), i + 1), (links, row.name), (shown, value), (ci, None if row.ci is None else row.ci[0]),
                 (mark_html, 0 if i == 0 else row.p_adjusted), (num(row.metric("RR@10")), row.metric("RR@10")),
                 (num(row.metric("R@10")), row.metric("R@10")), (num(fe, 2), fe),
                 (_rate_cell(rate, (timings or {}).get(row.first.config_hash) if len(row.entries) == 1 else None),
                  rate), (esc(notes(row.first)), notes(row.first))]
        tds = []
        for (content, sort), kind in zip(cells, types, strict=True):
            attr = "" if sort is None else esc(sort)
            tds.append(f"<td class=\"{'num' if kind == 'num' else ''}\" data-sort=\"{attr}\">{content}</td>")
        out.append(f"<tr class=\"{'tied' if row.tied else ''}\">" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    out.append("<h2>Trade-offs</h2><div class=\"plots\">")
    fe_points: list[tuple[float, float, str]] = []
    for row in rows:
        fe, value = row.metric("false_evidence_rate"), row.metric(main)
        if fe is not None and value is not None:
            fe_points.append((fe, value, row.name))
    out.append("<figure>" + svg_scatter(fe_points, "false-evidence rate (lower is better)", main, False,
                                         f"{main} vs false-evidence rate")
               + f"<figcaption>{esc(main)} against the false-evidence rate; the dashed line is the Pareto front. Rows "
               "without a threshold have no false-evidence rate and are not shown.</figcaption></figure>")
    by_hardware: dict[str, list[tuple[float, float, str]]] = {}
    for row in rows:
        provenance = row.first.record.provenance.model_dump(mode="json")
        if len(row.entries) == 1 and provenance.get("pairs_per_s") and row.metric(main) is not None:
            by_hardware.setdefault(hardware_key(provenance), []).append(
                (float(provenance["pairs_per_s"]), float(row.metric(main)), row.name))  # type: ignore[arg-type]
    for key, points in sorted(by_hardware.items()):
        out.append("<figure>" + svg_scatter(points, "pairs/s (self-reported)", main, True, f"{main} vs pairs/s")
                   + f"<figcaption>{esc(main)} against self-reported reranker throughput, only records measured on "
                   f"<strong>{esc(key)}</strong>.</figcaption></figure>")
    if not by_hardware:
        out.append("<p class=\"note\">No record reports reranker throughput.</p>")
    out.append("</div>")
    return page_html(f"{board} · {split} · rrbench leaderboard", "\n".join(out), script=True)


def _rate_cell(rate: float | None, timing: Mapping[str, Any] | None) -> str:
    """The claimed pairs/s, and the verifier's own measurement (``leaderboard check --time``) beside it."""
    claimed = "—" if rate is None else f"{float(rate):.1f}"
    label = measured_label(timing)
    return claimed if not label else f"{claimed}<br><span class=\"note\">pairs/s {esc(label)}</span>"


def write_site(leaderboard_dir: str | Path, html_dir: str | Path, timings: str | Path | None = None) -> Path:
    """Write the whole site into ``html_dir`` (replaced atomically); returns the index page. The board's settings
    (``board.yaml``) are the README's; ``timings`` is the verifier's timings file (default:
    ``verifier-timings.json`` beside the records, when it exists)."""
    groups = collect(leaderboard_dir)
    settings = read_settings(leaderboard_dir)
    method, margin = settings.method, settings.noninferiority_margin
    measured = read_timings(timings or default_timings_path(leaderboard_dir))
    target = Path(html_dir)
    if target.exists():
        if not (target / "index.html").is_file() and any(target.iterdir()):
            raise UsageError(f"{target}: exists and is not an rrbench HTML board; choose an empty folder")

        shutil.rmtree(target)
    with atomic_dir(target) as tmp:
        (tmp / "records").mkdir()
        links = []
        for (board, split), group in sorted(groups.items()):
            entries = group.verified
            if not entries:
                continue
            rows = build_rows(entries, method=method)
            newer = None
            atomic_write_text(tmp / page_name(board, split), _board_page(board, split, rows, newer, method, measured))
            for row in rows:
                for entry in row.entries:
                    atomic_write_text(tmp / "records" / f"{entry.path.parent.name}.html",
                                      _record_page(row, entry, board, split))
            links.append(f"<li><a href=\"{esc(page_name(board, split))}\">{esc(board)} · {esc(split)}</a> "
                         f"({len(entries)} records)" + (f" <span class=\"superseded\">superseded by {esc(newer)}"
                                                       "</span>" if newer else "") + "</li>")
        systems = cross_task(groups, margin=margin)
        if systems:
            atomic_write_text(tmp / PAGE, cross_task_page(systems, margin))
            links.append(f"<li><a href=\"{PAGE}\">Across tasks</a> ({len(systems)} systems on two or "
                         f"more tasks)</li>")
        body = ("<h1>rrbench leaderboard</h1><p class=\"note\">Built by <code>rrbench leaderboard build --html</code> "
                "from the published records alone; works offline.</p><ul>" + "".join(links) + "</ul>"
                if links else "<h1>rrbench leaderboard</h1><p>No records published yet.</p>")
        atomic_write_text(tmp / "index.html", page_html("rrbench leaderboard", body))
    return target / "index.html"


__all__ = ["hardware_key", "page_name", "pareto_front", "svg_histogram", "svg_scatter", "write_site"]
