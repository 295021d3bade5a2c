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
  reproducing command.
"""

from __future__ import annotations

import html
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
from rrbench.leaderboard.cross_task import MARGIN, CrossSystem, cross_task
from rrbench.leaderboard.timing import default_timings_path, measured_label, read_timings
from rrbench.measures.significance import ALPHA
from rrbench.util.errors import UsageError
from rrbench.util.io import atomic_dir, atomic_write_text, strict_json_dumps

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#1d2330;max-width:1200px}
h1,h2{font-weight:600} a{color:#1f5fbf} table{border-collapse:collapse;width:100%;margin:1em 0}
th,td{border-bottom:1px solid #d8dde6;padding:.35em .6em;text-align:left;font-size:14px}
th{background:#eef2f8;cursor:pointer;user-select:none;white-space:nowrap} th.sorted-asc::after{content:" ▲"}
th.sorted-desc::after{content:" ▼"} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.tied td{background:#fbf7e6} .tie{color:#8a6d00;font-weight:600} .leader{color:#1b7a3a;font-weight:600}
input#filter{padding:.4em .6em;width:22em;font-size:14px} .note{color:#5a6375;font-size:13px}
.plots{display:flex;flex-wrap:wrap;gap:2em} figure{margin:0} figcaption{font-size:13px;color:#5a6375}
pre{background:#f5f7fa;padding:1em;overflow:auto;font-size:12px} .superseded{color:#a33;font-weight:600}
"""

SCRIPT = """
(function(){
  const table=document.getElementById('board'); if(!table) return;
  const body=table.tBodies[0]; let state={col:-1,dir:1};
  function key(cell){const v=cell.getAttribute('data-sort'); if(v===null||v==='') return null;
    const n=Number(v); return isNaN(n)?v.toLowerCase():n;}
  table.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
    state.dir=(state.col===i)?-state.dir:(th.dataset.type==='num'?-1:1); state.col=i;
    const rows=Array.from(body.rows);
    rows.sort(function(a,b){const x=key(a.cells[i]),y=key(b.cells[i]);
      if(x===null&&y===null) return 0; if(x===null) return 1; if(y===null) return -1;
      return (x<y?-1:x>y?1:0)*state.dir;});
    rows.forEach(function(r){body.appendChild(r);});
    table.querySelectorAll('th').forEach(function(h){h.classList.remove('sorted-asc','sorted-desc');});
    th.classList.add(state.dir>0?'sorted-asc':'sorted-desc');});});
  const filter=document.getElementById('filter');
  if(filter) filter.addEventListener('input',function(){const q=filter.value.toLowerCase();
    Array.from(body.rows).forEach(function(r){r.style.display=r.textContent.toLowerCase().includes(q)?'':'none';});
    document.getElementById('shown').textContent=Array.from(body.rows).filter(function(r){
      return r.style.display!=='none';}).length;});
})();
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _page(title: str, body: str, script: bool = False) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>\n{body}\n"
            + (f"<script>{SCRIPT}</script>" if script else "") + "</body></html>\n")


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


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
        return f"<p class=\"note\">{_e(title)}: no records with both values.</p>"
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
             f"aria-label=\"{_e(title)}\">",
             f"<rect x=\"{pad}\" y=\"{pad}\" width=\"{width - 2 * pad}\" height=\"{height - 2 * pad}\" "
             "fill=\"#fafbfd\" stroke=\"#c9d0dc\"/>"]
    for frac in (0.0, 0.5, 1.0):
        xv, yv = x0 + frac * (x1 - x0), y0 + frac * (y1 - y0)
        parts.append(f"<text x=\"{sx(xv):.1f}\" y=\"{height - pad + 16}\" font-size=\"11\" "
                     f"text-anchor=\"middle\">{xv:.3g}</text>")
        parts.append(f"<text x=\"{pad - 6}\" y=\"{sy(yv) + 4:.1f}\" font-size=\"11\" text-anchor=\"end\">"
                     f"{yv:.3f}</text>")
    parts.append(f"<text x=\"{width / 2}\" y=\"{height - 10}\" font-size=\"12\" text-anchor=\"middle\">"
                 f"{_e(x_label)}</text>")
    parts.append(f"<text x=\"12\" y=\"{height / 2}\" font-size=\"12\" text-anchor=\"middle\" "
                 f"transform=\"rotate(-90 12 {height / 2})\">{_e(y_label)}</text>")
    if len(front) > 1:
        path = " ".join(f"{sx(points[i][0]):.1f},{sy(points[i][1]):.1f}" for i in front)
        parts.append(f"<polyline points=\"{path}\" fill=\"none\" stroke=\"#1b7a3a\" stroke-dasharray=\"4 3\"/>")
    for i, (x, y, label) in enumerate(points):
        colour = "#1b7a3a" if i in front else "#1f5fbf"
        parts.append(f"<circle cx=\"{sx(x):.1f}\" cy=\"{sy(y):.1f}\" r=\"5\" fill=\"{colour}\"><title>{_e(label)}: "
                     f"{x:.4g}, {y:.4f}</title></circle>")
        right_half = sx(x) > width / 2  # label towards the plot's centre so that it stays inside the picture
        parts.append(f"<text x=\"{sx(x) + (-7 if right_half else 7):.1f}\" y=\"{sy(y) - 6:.1f}\" font-size=\"10\" "
                     f"text-anchor=\"{'end' if right_half else 'start'}\">{_e(label[:48])}</text>")
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
             f"aria-label=\"histogram of per-query {_e(label)}\">"]
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
                 f"{_e(label)} ({len(values)} queries)</text></svg>")
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
    body = [f"<p><a href=\"../{_e(page_name(board, split))}\">← {_e(board)} · {_e(split)}</a></p>",
            f"<h1>{_e(entry.identity)}</h1>",
            f"<p>{_e(main)} <strong>{_num(entry.main_value)}</strong>; config hash "
            f"<code>{_e(record.config_hash)}</code>; {_e(notes(entry))}; {_e(entry.verified.status)}</p>",
            "<h2>Reproduce</h2>", f"<pre id=\"command\">rrbench reproduce {_e(entry.path.parent.name)}</pre>",
            "<p>Local paths show their last part only (<code>&lt;local&gt;/NAME</code>); weights are identified by "
            "their sha256 in the claims.</p>",
            "<h2>Per-query distribution</h2>", svg_histogram(values, main),
            "<h2>Metrics (re-derived by the verifier)</h2>",
            f"<pre>{_e(strict_json_dumps(entry.verified.metrics))}</pre>",
            "<h2>Claims (hashed configuration)</h2>",
            f"<pre id=\"claims\">{_e(strict_json_dumps(portable(record.config.model_dump(mode='json'))))}</pre>",
            "<h2>Provenance (as the submitter reports it)</h2>",
            f"<pre>{_e(strict_json_dumps(portable(record.provenance.model_dump(mode='json'))))}</pre>"]
    return _page(f"{entry.identity} · {board} · {split}", "\n".join(body))


def _board_page(board: str, split: str, rows: Sequence[Row], newer: str | None, method: str,
                timings: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    main = rows[0].main_score
    head = ["#", "System", main, "95% CI", "vs leader", "RR@10", "R@10", "FalseEvid", "pairs/s", "Notes"]
    types = ["num", "text", "num", "num", "num", "num", "num", "num", "num", "text"]
    out = ["<p><a href=\"index.html\">← all boards</a></p>", f"<h1>{_e(board)} · {_e(split)}</h1>"]
    if newer:
        out.append(f"<p class=\"superseded\">Superseded by {_e(newer)}: these records stay readable; new submissions "
                   "go to the new board.</p>")
    test = "Holm-corrected paired sign-flip tests" if method == "holm" else "the randomised Tukey HSD test"
    out.append(f"<p class=\"note\">Main score {_e(main)} with a 95% bootstrap interval over queries. Every row is "
               f"compared with the leader by {test}; <span class=\"tie\">≈ tied</span> marks an adjusted p ≥ 0.05. "
               "Click a column header to sort, type to filter.</p>")
    out.append(f"<p><input id=\"filter\" type=\"search\" placeholder=\"filter systems…\" aria-label=\"filter\"> "
               f"<span class=\"note\"><span id=\"shown\">{len(rows)}</span> of {len(rows)} rows</span></p>")
    out.append("<table id=\"board\"><thead><tr>" + "".join(
        f"<th data-type=\"{t}\">{_e(h)}</th>" for h, t in zip(head, types, strict=True)) + "</tr></thead><tbody>")
    for i, row in enumerate(rows):
        value = row.metric(main)
        shown = _num(value) + (f" ± {_num(row.std)}" if row.std is not None else "")
        ci = "—" if row.ci is None else f"[{_num(row.ci[0])}, {_num(row.ci[1])}]"
        mark = vs_leader(row, i)
        mark_html = (f"<span class=\"leader\">{_e(mark)}</span>" if i == 0 else
                     f"<span class=\"tie\">{_e(mark)}</span>" if row.tied else _e(mark))
        rate = row.first.record.provenance.pairs_per_s if len(row.entries) == 1 else None
        links = ", ".join(f"<a href=\"records/{_e(e.path.parent.name)}.html\">{_e(e.identity if len(row.entries) == 1 else e.path.parent.name[-8:])}</a>"
                          for e in row.entries)
        fe = row.metric("false_evidence_rate")
        cells = [(str(i + 1), i + 1), (links, row.name), (shown, value), (ci, None if row.ci is None else row.ci[0]),
                 (mark_html, 0 if i == 0 else row.p_adjusted), (_num(row.metric("RR@10")), row.metric("RR@10")),
                 (_num(row.metric("R@10")), row.metric("R@10")), (_num(fe, 2), fe),
                 (_rate_cell(rate, (timings or {}).get(row.first.config_hash) if len(row.entries) == 1 else None),
                  rate), (_e(notes(row.first)), notes(row.first))]
        tds = []
        for (content, sort), kind in zip(cells, types, strict=True):
            attr = "" if sort is None else _e(sort)
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
               + f"<figcaption>{_e(main)} against the false-evidence rate; the dashed line is the Pareto front. Rows "
               "without a threshold have no false-evidence rate and are not shown.</figcaption></figure>")
    by_hardware: dict[str, list[tuple[float, float, str]]] = {}
    for row in rows:
        provenance = row.first.record.provenance.model_dump(mode="json")
        if len(row.entries) == 1 and provenance.get("pairs_per_s") and row.metric(main) is not None:
            by_hardware.setdefault(hardware_key(provenance), []).append(
                (float(provenance["pairs_per_s"]), float(row.metric(main)), row.name))  # type: ignore[arg-type]
    for key, points in sorted(by_hardware.items()):
        out.append("<figure>" + svg_scatter(points, "pairs/s (self-reported)", main, True, f"{main} vs pairs/s")
                   + f"<figcaption>{_e(main)} against self-reported reranker throughput, only records measured on "
                   f"<strong>{_e(key)}</strong>.</figcaption></figure>")
    if not by_hardware:
        out.append("<p class=\"note\">No record reports reranker throughput.</p>")
    out.append("</div>")
    return _page(f"{board} · {split} · rrbench leaderboard", "\n".join(out), script=True)


CROSS_TASK_PAGE = "across-tasks.html"


def _cross_task_page(systems: Sequence[CrossSystem]) -> str:
    """The cross-task view (:mod:`rrbench.leaderboard.cross_task`) as one table per system."""
    out = ["<h1>Across tasks</h1>",
           f"<p class=\"note\">Δ BM25: difference to BM25 pinned on each task (same split, pool size, BM25 options). "
           f"Fails on: one-sided paired sign-flip test, Holm over the system's tasks, adjusted p &lt; {ALPHA}. Holds "
           f"everywhere: non-inferior by {MARGIN:g} on every task (intersection-union test). A mean over a few tasks "
           f"says little about the next one; see docs/leaderboard.md.</p>"]
    for system in systems:
        holds = system.holds_everywhere()
        out.append(f"<h2>{_e(system.name)} · {_e(system.split)}</h2><p>fails on: "
                   f"{_e(', '.join(system.fails_on()) or 'none')}; holds everywhere: "
                   f"{'—' if holds is None else ('yes' if holds else 'no')}; mean over tasks {_num(system.mean())}</p>")
        out.append("<table><tr><th>task</th><th>score</th><th>FE</th><th>BM25</th><th>Δ BM25</th><th>95% CI</th>"
                   "<th>p worse (Holm)</th></tr>")
        for c in system.cells:
            ci = "—" if c.ci is None else f"[{c.ci[0]:+.4f}, {c.ci[1]:+.4f}]"
            out.append(f"<tr><td>{_e(c.task)}</td><td>{_num(c.value)}</td><td>{_num(c.fe, 2)}</td>"
                       f"<td>{_num(c.bm25)}</td><td>{'—' if c.delta is None else f'{c.delta:+.4f}'}</td>"
                       f"<td>{ci}</td><td>{_num(c.p_worse_holm, 3)}</td></tr>")
        out.append("</table>")
    return _page("Across tasks · rrbench leaderboard", "\n".join(out))


def _rate_cell(rate: float | None, timing: Mapping[str, Any] | None) -> str:
    """The claimed pairs/s, and the verifier's own measurement (``leaderboard check --time``) beside it."""
    claimed = "—" if rate is None else f"{float(rate):.1f}"
    label = measured_label(timing)
    return claimed if not label else f"{claimed}<br><span class=\"note\">pairs/s {_e(label)}</span>"


def write_site(leaderboard_dir: str | Path, html_dir: str | Path, method: str = "holm",
               timings: str | Path | None = None) -> Path:
    """Write the whole site into ``html_dir`` (replaced atomically); returns the index page. ``timings`` is the
    verifier's timings file (default: ``verifier-timings.json`` beside the records, when it exists)."""
    groups = collect(leaderboard_dir)
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
            links.append(f"<li><a href=\"{_e(page_name(board, split))}\">{_e(board)} · {_e(split)}</a> "
                         f"({len(entries)} records)" + (f" <span class=\"superseded\">superseded by {_e(newer)}"
                                                       "</span>" if newer else "") + "</li>")
        systems = cross_task(groups)
        if systems:
            atomic_write_text(tmp / CROSS_TASK_PAGE, _cross_task_page(systems))
            links.append(f"<li><a href=\"{CROSS_TASK_PAGE}\">Across tasks</a> ({len(systems)} systems on two or "
                         f"more tasks)</li>")
        body = ("<h1>rrbench leaderboard</h1><p class=\"note\">Built by <code>rrbench leaderboard build --html</code> "
                "from the published records alone; works offline.</p><ul>" + "".join(links) + "</ul>"
                if links else "<h1>rrbench leaderboard</h1><p>No records published yet.</p>")
        atomic_write_text(tmp / "index.html", _page("rrbench leaderboard", body))
    return target / "index.html"


__all__ = ["hardware_key", "page_name", "pareto_front", "svg_histogram", "svg_scatter", "write_site"]
