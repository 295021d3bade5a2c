"""The frame every page of the HTML board shares: inline style, the table-sorting and filtering script, escaping.

Kept apart from the pages so that each page module (``html.py``, ``html_cross_task.py``) draws with the same parts
without importing the other.
"""

from __future__ import annotations

import html
from typing import Any

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


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def page_html(title: str, body: str, script: bool = False) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>\n{body}\n"
            + (f"<script>{SCRIPT}</script>" if script else "") + "</body></html>\n")


def num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"
