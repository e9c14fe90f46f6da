"""The study report: report/<study>/report.md with tables and figures."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis import figures, stats
from analysis.views import connect


def markdown_table(records: list[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table; floats to 4 significant digits."""
    if not records:
        return "_no rows_\n"
    columns = list(columns or records[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for record in records:
        lines.append("| " + " | ".join(_cell(record.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def build_report(
    studies: Sequence[str], results: str = "results", out: str = "report", baseline: str = "mse"
) -> Path:
    """Writes the report of one or more studies and returns the Markdown file's path."""
    con = connect(results, studies)
    folder = Path(out) / "+".join(studies)
    folder.mkdir(parents=True, exist_ok=True)
    overview = stats.rows(
        con,
        "SELECT study, loss_label AS loss, status, count(*) AS n_cells, avg(auroc) AS mean_auroc "
        "FROM trials GROUP BY ALL ORDER BY study, loss, status",
    )
    convergence = stats.convergence(con)
    deltas = stats.paired_deltas(con, baseline)
    sections = [
        f"# Report: {', '.join(studies)}\n",
        f"Generated {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC} from `{results}`.\n",
        "## Trials\n",
        markdown_table(overview),
        "## Convergence variance per loss and epoch\n",
        "Across complete cells (hyperparameters and seeds pooled). `loss_*` is each loss's own "
        "objective; `mse_*` is the common scale on which losses can be compared.\n",
    ]
    if convergence:
        png = figures.loss_bands(convergence, folder / "loss_bands.png")
        sections.append(f"![loss bands per epoch]({png.name})\n")
    sections.append(markdown_table(convergence))
    sections += [
        f"## AUROC deltas against {baseline}\n",
        "Pairs of complete trials equal on every field but the loss; delta = loss - baseline.\n",
        markdown_table(stats.delta_summary(deltas)),
        "### Trials without a pair\n",
        markdown_table(stats.unpaired(con, baseline)),
    ]
    path = folder / "report.md"
    path.write_text("\n".join(sections))
    return path
