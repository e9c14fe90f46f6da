"""A report's blocks (analysis.document) as one self-contained HTML page.

Made to be read in a browser: a table of contents that stays in view beside the text
(above it on a narrow window), every table in a box of its own that scrolls sideways when
it is wider than the page (the page itself never does), tables sorted by a click on a
column's heading (a few lines of inline script; numbers sort as numbers), and one number
format per column (analysis.number_format). Inline CSS and script, figures as base64 PNG
data URIs: one file, nothing fetched.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

from analysis.document import Block, Figure, Heading, Table, Text, inline_html
from analysis.number_format import column_formats, formatted

STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d232a;
line-height:1.45;display:grid;grid-template-columns:15em minmax(0,1fr);gap:0 2em}
main{min-width:0;max-width:1180px;padding:1em 1em 4em}
nav.toc{position:sticky;top:0;align-self:start;max-height:100vh;overflow-y:auto;
padding:1.2em .8em 1em 1em;border-right:1px solid #dde;font-size:.88em;background:#fafbfc}
nav.toc a{display:block;padding:.18em 0;color:#234;text-decoration:none}
nav.toc a:hover{text-decoration:underline}nav.toc .toc-title{font-weight:600;margin-bottom:.4em}
@media (max-width:900px){body{display:block}nav.toc{position:static;max-height:none;
border-right:0;border-bottom:1px solid #dde}nav.toc a{display:inline-block;margin-right:1em}}
h1{border-bottom:2px solid #334;padding-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ccd}
h2,h3{scroll-margin-top:.5em}
.scroll{max-width:100%;overflow-x:auto;margin:.6em 0 1.2em;border:1px solid #e3e6ea}
table{border-collapse:collapse;font-size:.86em}
th,td{border:1px solid #d0d4da;padding:.25em .55em;text-align:right;white-space:nowrap}
th{background:#eef1f5;position:sticky;top:0;cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td:first-child,th:first-child{text-align:left}td.text{text-align:left}
tr:nth-child(even) td{background:#f8f9fb}.caption{font-size:.9em;color:#444;margin:.2em 0}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #e1e4e8}
figcaption{font-size:.9em;color:#444}code{background:#f1f3f5;padding:0 .25em;border-radius:3px;
overflow-wrap:anywhere}p{overflow-wrap:anywhere}
.better{color:#0a6b2b;font-weight:600}.worse{color:#a4161a;font-weight:600}
.equivalent{color:#1d4e89;font-weight:600}.inconclusive{color:#8a6d00;font-weight:600}
td.wrap{white-space:normal;min-width:18em;max-width:36em;text-align:left}
"""

# Click a column heading: its rows sorted (numbers as numbers, by data-v), again: reversed.
SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function(th){
 th.addEventListener("click",function(){
  var table=th.closest("table"),body=table.tBodies[0],i=th.cellIndex;
  var up=th.getAttribute("aria-sort")!=="ascending";
  table.querySelectorAll("th").forEach(function(h){h.removeAttribute("aria-sort")});
  th.setAttribute("aria-sort",up?"ascending":"descending");
  var key=function(tr){var td=tr.cells[i];var v=td.getAttribute("data-v");
   return v!==null&&v!==""?parseFloat(v):td.textContent.trim()};
  Array.from(body.rows).sort(function(a,b){var x=key(a),y=key(b);
   if(x===""||y===""){return x===""?1:-1}
   var c=(typeof x==="number"&&typeof y==="number")?x-y:String(x).localeCompare(String(y));
   return up?c:-c}).forEach(function(tr){body.appendChild(tr)});
 });
});
"""


def html_table(table: Table) -> str:
    """A sortable table in a box of its own; each column's numbers in one format."""
    if not table.records:
        return "<p><em>no rows</em></p>"
    columns = list(table.columns or table.records[0])
    formats = column_formats(table.records, columns)
    head = "".join(f'<th scope="col">{html.escape(c)}</th>' for c in columns)
    body = []
    for record in table.records:
        cells = []
        for c in columns:
            value = record.get(c)
            text = formatted(value, formats[c])
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            css = (text.replace(" ", "-") if c == "verdict"
                   else "wrap" if len(text) > 40 else "" if numeric else "text")
            attrs = (f' class="{css}"' if css else "") + (
                f' data-v="{value!r}"' if numeric and text else "")
            cells.append(f"<td{attrs}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f'<p class="caption">{html.escape(table.caption)}</p>' if table.caption else ""
    return (f'{caption}<div class="scroll"><table class="sortable"><thead><tr>{head}</tr>'
            f"</thead><tbody>{''.join(body)}</tbody></table></div>")


def toc(blocks: Sequence[Block]) -> str:
    """The sticky table of contents: every section (level 2 heading)."""
    links = "".join(f'<a href="#{anchor(b.text)}">{html.escape(b.text)}</a>'
                    for b in blocks if isinstance(b, Heading) and b.level == 2)
    return (f'<nav class="toc" aria-label="contents"><div class="toc-title">Contents</div>'
            f"{links}</nav>")


def figure_html(block: Figure) -> str:
    data = base64.b64encode(Path(block.path).read_bytes()).decode()
    alt = html.escape(block.caption)
    return (f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
            f"<figcaption>{alt}</figcaption></figure>")


def to_html(blocks: Sequence[Block], title: str) -> str:
    """One self-contained HTML page: inline CSS and script, figures as data URIs."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            level = block.level
            parts.append(f'<h{level} id="{anchor(block.text)}">{html.escape(block.text)}'
                         f"</h{level}>")
        elif isinstance(block, Text):
            parts.append(inline_html(block.text))
        elif isinstance(block, Table):
            parts.append(html_table(block))
        else:
            parts.append(figure_html(block))
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + toc(blocks) + "<main>" + "\n".join(parts) + "</main>"
            + f"<script>{SCRIPT}</script></body></html>\n")


def anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
