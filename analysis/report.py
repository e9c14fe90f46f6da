"""The study report: <out>/<studies>/report.md and report.html with tables and figures.

The first screen answers the question: one sentence per compared value with the forest
plot and the paired scatter; then the claims table, stability, the grid's description,
the deltas, the paper tables; provenance last. ``report.md`` links the PNG figures beside
it; ``report.html`` is one self-contained page (figures embedded as data URIs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from analysis import sections, sections_detail, tuned
from analysis.claims import claims
from analysis.deltas import axis_values
from analysis.document import Block, Heading, Table, Text, markdown_table, to_markdown
from analysis.html_page import to_html
from analysis.queries import PAPER_TABLES
from analysis.scope import scopes
from analysis.tuned_section import tuned_section
from analysis.views import connect, materialize, rows

__all__ = ["FORMATS", "build_report", "markdown_table"]

FORMATS = ("md", "html")

SECTIONS = (
    sections.answer_section, sections.claims_section, sections.trials_section,
    sections_detail.stability_section, sections_detail.convergence_section,
    sections_detail.deltas_section, sections_detail.auroc_epochs_section,
    sections_detail.bestof_section,
)

# When a paper table is worth showing in a report (it is always reachable as a query).
SHOWN_WHEN = {
    "lamp_table1": "count(DISTINCT batch_size) > 1 OR bool_or(loss = 'lamp')",
    "lamp_table2": "bool_or(loss = 'lamp')",
    "iaead_table3": "bool_or(protocol = 'contaminated')",
    "aevae_outcomes": "bool_or(dataset = 'lines2x2')",
}


def build_report(
    studies: Sequence[str], results: str = "results", out: str = "report",
    baseline: str = "mse", format: Sequence[str] = FORMATS, last: int = 5,  # noqa: A002
) -> Path:
    """Writes the report of one or more studies.

    Args:
        studies: study names under ``results``.
        results: the results root (local path or URI).
        out: the report root; the report goes to <out>/<study+study...>/.
        baseline: the loss every other loss is compared against.
        format: any of "md", "html".
        last: epochs at the end of training used for oscillation statistics.
    Returns:
        The path of report.md, or of report.html when Markdown was not asked for.
    Raises:
        ValueError: for an unknown format; FileNotFoundError for an unknown study.
    """
    unknown = [f for f in format if f not in FORMATS]
    if unknown or not format:
        raise ValueError(f"unknown report format {unknown[:1] or format!r}; choose from "
                         f"{list(FORMATS)}")
    con = materialize(connect(results, studies))
    if not rows(con, "SELECT count(*) AS n FROM trials")[0]["n"]:
        raise ValueError(f"no stored trials of {', '.join(studies)} in {results}: nothing to "
                         "report (submit the study first; adstudy status shows what is stored)")
    folder = Path(out) / "+".join(studies)
    with staging(folder) as temp:
        cli = " ".join([f"--results {results}", *(f"--study {s}" for s in studies)])
        ctx = sections.Context(temp, baseline, last=last, cli=cli,
                               has_baseline=baseline in axis_values(con))
        blocks = (header(studies, results, ctx) + body(con, results, studies, ctx)
                  + sections.provenance_section(con, ctx))
        if "md" in format:
            (temp / "report.md").write_text(to_markdown(blocks))
        if "html" in format:
            (temp / "report.html").write_text(to_html(blocks,
                                                      f"adstudy report: {', '.join(studies)}"))
    return folder / ("report.md" if "md" in format else "report.html")


class ReportWriteError(ValueError):
    """The report's folder cannot be written (a read-only or full disk)."""


@contextlib.contextmanager
def staging(folder: Path) -> Iterator[Path]:
    """A temp folder beside ``folder`` the report is written into; when the block ends, each
    file is renamed into ``folder`` (a reader sees a whole file or the old one, never a half
    or 0-byte PNG); when it fails, the temp folder goes and ``folder`` is as it was.

    Raises:
        ReportWriteError: when a file cannot be written, naming the folder and the cause.
    """
    temp = folder.parent / f".{folder.name}.{uuid.uuid4().hex}.tmp"
    try:
        temp.mkdir(parents=True)
        yield temp
        folder.mkdir(parents=True, exist_ok=True)
        for path in sorted(temp.iterdir()):
            os.replace(path, folder / path.name)
    except OSError as err:
        raise ReportWriteError(f"cannot write the report to {folder}: "
                               f"{err.strerror or err}") from err
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def body(con, results: str, studies: Sequence[str], ctx: sections.Context) -> list[Block]:
    """The sections and paper tables; where the trials hold tuned rows (search: optuna),
    the grid sections cover the grid rows alone and the tuned comparison follows."""
    grid, blocks = con, []
    if tuned.has_tuned(con):
        if not tuned.has_grid(con):
            return sections.trials_section(con, ctx) + tuned_section(con, ctx)
        grid = tuned.grid_only(materialize(connect(results, studies)))
        blocks.append(Text("Sections before the tuned comparison cover the grid rows only "
                           "(trials with no group_id)."))
    found = scopes(grid, ctx.axis)
    ctx = dataclasses.replace(
        ctx, unit=found[0].options.unit if found else ctx.unit,
        claims=tuple(claims(grid, ctx.baseline, ctx.axis, ctx.last)) if ctx.has_baseline else ())
    blocks += scope_note(found)
    for section in SECTIONS:
        blocks += section(grid, ctx)
    blocks += paper_tables(grid, ctx)
    return blocks + (tuned_section(con, ctx) if grid is not con else [])


def scope_note(found: list) -> list[Block]:
    """Says which studies the claims pool, when the report covers several."""
    if sum(len(s.studies) for s in found) < 2:
        return []
    parts = [f"`{'`, `'.join(s.studies)}`" for s in found]
    if len(found) == 1:
        return [Text(f"**Pooled**: the claims pool studies {parts[0]}: they differ in nothing "
                     "but the compared axis and share their analysis settings.")]
    return [Text("**Not pooled**: these studies differ in more than the compared axis (or "
                 "in their analysis settings), so each group has claims of its own: "
                 + "; ".join(parts) + ".")]


def header(studies: Sequence[str], results: str, ctx: sections.Context) -> list[Block]:
    """Title and what every number carries (provenance is the report's last section)."""
    now = datetime.datetime.now(datetime.UTC)
    return [
        Heading(f"Report: {', '.join(studies)}", 1),
        Text(f"Generated {now:%Y-%m-%d %H:%M UTC} from `{results}`. Baseline {ctx.axis}: "
             f"`{ctx.baseline}`. Every number carries its evidence (n units, n pairs, n "
             "cells, n seeds, a 95% interval); each section names the `adstudy sql` query "
             "that reproduces it."),
    ]


def paper_tables(con, ctx: sections.Context) -> list[Block]:
    """The paper-format tables that apply to these trials; the others are named."""
    blocks: list[Block] = [Heading("Paper-format tables")]
    skipped = []
    for name, make in PAPER_TABLES.items():
        when = SHOWN_WHEN.get(name, "true")
        found = rows(con, f"SELECT coalesce({when}, false) AS ok FROM trials")
        shown = bool(found and found[0]["ok"])
        table = make(con) if shown else None
        if table is None or not table.records:
            skipped.append(name)
            continue
        blocks += [Heading(table.title, 3), Table(table.records, caption=table.note),
                   sections.reproduce(ctx, name)]
    if skipped:
        blocks.append(Text("Not shown (these trials lack what they need; each is still a "
                           f"named query): {', '.join(skipped)}."))
    return blocks
