"""A report as a list of blocks, rendered to Markdown or to one self-contained HTML page.

Blocks: ``Heading``, ``Text`` (Markdown-lite: `code` and **bold**), ``Table`` (records)
and ``Figure`` (a PNG file, linked from Markdown, embedded as a data URI in HTML).
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclasses.dataclass(frozen=True)
class Text:
    text: str


@dataclasses.dataclass(frozen=True)
class Table:
    records: list[dict[str, Any]]
    columns: Sequence[str] | None = None
    caption: str = ""


@dataclasses.dataclass(frozen=True)
class Figure:
    path: Path
    caption: str


Block = Heading | Text | Table | Figure


def cell_text(value: Any) -> str:
    """A table cell: floats to 4 significant digits, None and NaN as an empty cell."""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def markdown_table(records: list[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table; floats to 4 significant digits."""
    if not records:
        return "_no rows_\n"
    columns = list(columns or records[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for record in records:
        cells = (cell_text(record.get(c)).replace("|", "\\|") for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_markdown(blocks: Sequence[Block]) -> str:
    """The blocks as Markdown; figures link to their PNG by file name."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}\n")
        elif isinstance(block, Text):
            parts.append(block.text + "\n")
        elif isinstance(block, Table):
            caption = f"{block.caption}\n\n" if block.caption else ""
            parts.append(caption + markdown_table(block.records, block.columns))
        else:
            parts.append(f"![{block.caption}]({block.path.name})\n\n_{block.caption}_\n")
    return "\n".join(parts)


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1180px;
margin:2em auto;padding:0 1em;color:#1d232a;line-height:1.45}
h1{border-bottom:2px solid #334;padding-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ccd}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.86em;display:block;overflow-x:auto}
th,td{border:1px solid #d0d4da;padding:.25em .55em;text-align:right;white-space:nowrap}
th{background:#eef1f5}td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#f8f9fb}.caption{font-size:.9em;color:#444;margin:.2em 0}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #e1e4e8}
figcaption{font-size:.9em;color:#444}code{background:#f1f3f5;padding:0 .25em;border-radius:3px}
.better{color:#0a6b2b;font-weight:600}.worse{color:#a4161a;font-weight:600}
.equivalent{color:#1d4e89;font-weight:600}.inconclusive{color:#8a6d00;font-weight:600}
nav a{margin-right:1em}
td.wrap{white-space:normal;min-width:18em;text-align:left}
"""


def inline_html(text: str) -> str:
    """Escapes text, then renders `code`, **bold** and blank-line paragraphs."""
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    escaped = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)
    return "".join(f"<p>{p.strip()}</p>" for p in escaped.split("\n\n") if p.strip())


def html_table(table: Table) -> str:
    if not table.records:
        return "<p><em>no rows</em></p>"
    columns = list(table.columns or table.records[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for record in table.records:
        cells = []
        for c in columns:
            text = cell_text(record.get(c))
            css = text.replace(" ", "-") if c == "verdict" else "wrap" if len(text) > 40 else ""
            cells.append(f'<td class="{css}">{html.escape(text)}</td>' if css else
                         f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f'<p class="caption">{html.escape(table.caption)}</p>' if table.caption else ""
    return f"{caption}<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def to_html(blocks: Sequence[Block], title: str) -> str:
    """One self-contained HTML page: inline CSS, figures embedded as base64 PNG data URIs."""
    nav = " ".join(
        f'<a href="#{_anchor(b.text)}">{html.escape(b.text)}</a>'
        for b in blocks if isinstance(b, Heading) and b.level == 2
    )
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            level, anchor = block.level, _anchor(block.text)
            parts.append(f'<h{level} id="{anchor}">{html.escape(block.text)}</h{level}>')
            if block.level == 1:
                parts.append(f"<nav>{nav}</nav>")
        elif isinstance(block, Text):
            parts.append(inline_html(block.text))
        elif isinstance(block, Table):
            parts.append(html_table(block))
        else:
            data = base64.b64encode(Path(block.path).read_bytes()).decode()
            alt = html.escape(block.caption)
            parts.append(f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{alt}</figcaption></figure>")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
