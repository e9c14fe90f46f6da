"""A report as a list of blocks, rendered to Markdown or to one self-contained HTML page.

Blocks: ``Heading``, ``Text`` (Markdown-lite: `code` and **bold**), ``Table`` (records)
and ``Figure`` (a PNG file, linked from Markdown, embedded as a data URI in HTML: the
page itself is analysis.html_page).
"""

from __future__ import annotations

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


def inline_html(text: str) -> str:
    """Escapes text, then renders `code`, **bold** and blank-line paragraphs."""
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    escaped = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)
    return "".join(f"<p>{p.strip()}</p>" for p in escaped.split("\n\n") if p.strip())
