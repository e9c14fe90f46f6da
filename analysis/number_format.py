"""One number format per table column, so a column reads down without switching between
4.757e-05 and 0.0002854.

A column's floats get one format chosen from all of them: fixed-point with enough
decimals to show the smallest nonzero magnitude to 4 significant digits (at most 6), or,
when the column spans magnitudes fixed-point cannot show that way (below 1e-3 or from
1e6 up), scientific with 4 significant digits. Whole numbers stay whole; NaN and None
are empty cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MAX_DECIMALS = 6
SIGNIFICANT = 4


def column_format(values: Sequence[Any]) -> str:
    """The format spec of a column of values (only its finite floats matter)."""
    floats = [abs(v) for v in values if isinstance(v, float) and math.isfinite(v)]
    nonzero = [v for v in floats if v > 0]
    if not nonzero:
        return ".0f" if floats else ""
    low, high = min(nonzero), max(nonzero)
    if low < 1e-3 or high >= 1e6:
        return f".{SIGNIFICANT - 1}e"
    decimals = SIGNIFICANT - 1 - math.floor(math.log10(low))
    return f".{min(MAX_DECIMALS, max(0, decimals))}f"


def column_formats(records: Sequence[dict[str, Any]],
                   columns: Sequence[str]) -> dict[str, str]:
    """column -> its format spec."""
    return {c: column_format([r.get(c) for r in records]) for c in columns}


def formatted(value: Any, spec: str) -> str:
    """A cell's text: a float in its column's format, NaN and None empty, the rest as is."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return format(value, spec or ".4g")
    return str(value)
