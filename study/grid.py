"""Grid expansion: a pure function from a StudySpec to the list of cells it names."""

from __future__ import annotations

import itertools
from typing import Any

from study.cell import NAMED_FIELDS, Cell
from study.spec import StudySpec


def expand(spec: StudySpec) -> list[Cell]:
    """Every combination of the spec's compare and vary axes, on top of its fixed values.

    Returns cells in a stable order (axes in file order, values in list order), with
    duplicates removed (two axis values that normalise to the same cell).
    """
    axes = spec.axes
    base = _fields(dict(spec.fixed)) | {"study": spec.study}
    cells: dict[str, Cell] = {}
    for combo in itertools.product(*axes.values()):
        cell = Cell(**base | _fields(dict(zip(axes, combo, strict=True))))
        cells.setdefault(cell.cell_id, cell)
    return list(cells.values())


def count(spec: StudySpec) -> int:
    """The number of combinations, without building them (for the size check)."""
    total = 1
    for values in spec.axes.values():
        total *= len(values)
    return total


def _fields(values: dict[str, Any]) -> dict[str, Any]:
    """Splits normalised named values (name, params_json) into the two cell fields."""
    out: dict[str, Any] = {}
    for field, value in values.items():
        if field in NAMED_FIELDS:
            out[field], out[f"{field}_params"] = value
        else:
            out[field] = value
    return out
