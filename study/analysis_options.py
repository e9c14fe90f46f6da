"""The ``analysis:`` section of a study file: how the study's trials are judged.

    analysis:
      unit: normal_class          # the unit of inference; default [dataset, normal_class]
      margins: {auroc: 0.01}      # smallest effect of interest per metric (others: defaults)
      trend_tolerance: 0.05       # "not converged" above this log-change over the last epochs

Nothing here says what a cell is: no setting enters a cell id, and a study whose analysis
section changes is the same study (study/identity.py compares axes and fixed values only).
Pure Python: the analysis layer reads it from study.json without torch or ray.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from typing import Any

from study.cell import CELL_FIELDS
from study.errors import SpecError

KEYS = ("unit", "margins", "trend_tolerance")
# Cells of one normal class share one test split, so they are not independent: the class
# (within its dataset) is the unit a claim's interval is taken over.
DEFAULT_UNIT = ("dataset", "normal_class")
UNIT_FIELDS = tuple(f for f in CELL_FIELDS if f != "study" and not f.endswith("_params"))

# Smallest effects of interest: inside ±margin an effect is negligible ("equivalent").
DEFAULT_MARGINS: dict[str, float] = {
    # Half an AUROC point: the smallest gain the papers report is LMSE Table I's +0.006.
    "auroc": 0.005,
    "aupr_in": 0.005,
    "aupr_out": 0.005,
    # Ratios (other / baseline) of a spread, judged on the log scale: within 1/1.25 .. 1.25.
    "seed_sd": 1.25,  # seed-to-seed SD within a configuration
    "oscillation": 1.25,  # SD of the last epochs around their linear trend
    # Difference in the share of trials that diverged or failed (5 percentage points).
    "divergence": 0.05,
}
RATIO_MARGINS = ("seed_sd", "oscillation")
DEFAULT_TREND_TOLERANCE = 0.05  # |log change| of train_mse across the last k epochs


@dataclasses.dataclass(frozen=True)
class AnalysisOptions:
    """A study's analysis settings (defaults: module constants)."""

    unit: tuple[str, ...] = DEFAULT_UNIT
    margins: tuple[tuple[str, float], ...] = tuple(DEFAULT_MARGINS.items())
    trend_tolerance: float = DEFAULT_TREND_TOLERANCE

    def margin(self, metric: str) -> float:
        """The margin of a metric (a ratio > 1 for seed_sd and oscillation)."""
        return dict(self.margins)[metric]


DEFAULTS = AnalysisOptions()


def parse_analysis(block: Any, where: str = "analysis") -> AnalysisOptions:
    """The validated ``analysis:`` mapping (None or absent: every default).

    Raises:
        SpecError: naming the field, the value and the choices.
    """
    if block is None:
        return DEFAULTS
    if not isinstance(block, Mapping):
        raise SpecError(f"{where} must be a mapping with keys {list(KEYS)}, got {block!r}")
    _reject_unknown(block, KEYS, where)
    return AnalysisOptions(
        unit=_unit(block.get("unit", list(DEFAULT_UNIT)), f"{where}.unit"),
        margins=_margins(block.get("margins") or {}, f"{where}.margins"),
        trend_tolerance=_positive(block.get("trend_tolerance", DEFAULT_TREND_TOLERANCE),
                                  f"{where}.trend_tolerance"),
    )


def _reject_unknown(block: Mapping, allowed: tuple[str, ...], where: str) -> None:
    for key in block:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; choose from {sorted(allowed)}"
            raise SpecError(f"unknown key {key!r} in {where}{hint}")


def _unit(value: Any, where: str) -> tuple[str, ...]:
    fields = [value] if isinstance(value, str) else value
    if not isinstance(fields, list) or not fields:
        raise SpecError(f"{where}: expected a field name or a list of them, got {value!r}; "
                        f"choose from {sorted(UNIT_FIELDS)}")
    for field in fields:
        if field not in UNIT_FIELDS:
            raise SpecError(f"{where}: {field!r} is not a cell field; choose from "
                            f"{sorted(UNIT_FIELDS)}")
    if len(set(fields)) != len(fields):
        raise SpecError(f"{where} repeats a field: {value!r}")
    return tuple(fields)


def _margins(block: Any, where: str) -> tuple[tuple[str, float], ...]:
    if not isinstance(block, Mapping):
        raise SpecError(f"{where} must be a mapping of metric: margin, got {block!r}")
    _reject_unknown(block, tuple(DEFAULT_MARGINS), where)
    margins = dict(DEFAULT_MARGINS)
    for metric, value in block.items():
        number = _positive(value, f"{where}.{metric}")
        if metric in RATIO_MARGINS and number <= 1:
            raise SpecError(f"{where}.{metric}: {value!r} is a ratio margin; give a number > 1 "
                            "(1.25: within 1/1.25 .. 1.25)")
        margins[metric] = number
    return tuple(margins.items())


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            0 < value < math.inf):
        raise SpecError(f"{where}: expected a number > 0, got {value!r}")
    return float(value)
