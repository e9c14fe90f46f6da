"""Helpers shared by the paper-format tables: the table record, method labels, pivots.

A paper table is one flat list of records (a ``dataset`` column where it spans several)
with a note that carries its evidence: n cells, n seeds and what ± means.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from analysis.views import rows

# Scientific axes whose labels name a "method" when they vary (IAEAD's columns).
METHOD_AXES = ("model_label", "loss_label", "score")


@dataclasses.dataclass(frozen=True)
class PaperTable:
    """A table shaped like a paper's, with its evidence; ``records`` empty if it does not
    apply to these trials, and ``note`` then says what it needs."""

    name: str
    title: str
    records: list[dict[str, Any]]
    note: str


def method_sql(con) -> str:
    """SQL naming a trial's method: the labels of the scientific axes that vary here."""
    varying = [
        c for c in METHOD_AXES
        if rows(con, f"SELECT count(DISTINCT {c}) AS n FROM trials")[0]["n"] > 1
    ]
    return f"concat_ws(' / ', {', '.join(varying)})" if varying else "loss_label"


def mean_pm(mean: float | None, std: float | None, scale: float = 1.0, digits: int = 3) -> str:
    """'0.981 ± 0.007'; a lone value (no std) is shown without ±; None as ''."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    if std is None or math.isnan(std):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def pivot(
    records: Iterable[dict[str, Any]], index: tuple[str, ...], column: str, value: str,
    columns: list[Any] | None = None,
) -> list[dict[str, Any]]:
    """Long records to wide: one row per ``index`` tuple, one column per ``column`` value."""
    out: dict[tuple, dict[str, Any]] = {}
    seen: list[Any] = []
    for r in records:
        key = tuple(r[i] for i in index)
        out.setdefault(key, dict(zip(index, key, strict=True)))[str(r[column])] = r[value]
        if r[column] not in seen:
            seen.append(r[column])
    names = [str(c) for c in (columns if columns is not None else seen)]
    return [{**{i: row[i] for i in index}, **{c: row.get(c, "") for c in names}}
            for row in out.values()]


def span(values: Iterable[int]) -> str:
    """'8' when every count is the same, '6-8' when they differ."""
    found = sorted(set(values))
    if not found:
        return "0"
    return str(found[0]) if len(found) == 1 else f"{found[0]}-{found[-1]}"


def add_evidence(
    records: list[dict[str, Any]], index: tuple[str, ...], long: list[dict[str, Any]],
    cells: str = "n_cells", seeds: str = "n_seeds",
) -> list[dict[str, Any]]:
    """Adds 'n cells' (summed) and 'n seeds' (max) of the long rows behind each record, so
    a table's numbers carry their evidence wherever the records go (CSV, JSON, Markdown)."""
    for record in records:
        mine = [r for r in long if all(r.get(i) == record.get(i) for i in index)]
        record["n cells"] = sum(int(r[cells]) for r in mine)
        record["n seeds"] = max((int(r[seeds]) for r in mine), default=0)
    return records


def evidence_note(n_cells: int, n_seeds: int, extra: str = "", what: str = "complete cells") -> str:
    """The sentence every table ends with: its n cells and n seeds."""
    return f"n = {n_cells} {what}, {n_seeds} seed(s). {extra}".strip()


def not_applicable(name: str, title: str, needs: str) -> PaperTable:
    return PaperTable(name, title, [], f"not applicable to these trials: needs {needs}")
