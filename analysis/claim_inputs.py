"""What each claim is judged on: SQL over the views, giving per-pair or per-unit numbers.

Every row carries its ``study``, ``dataset``, compared ``value``, ``unit`` (the unit of
inference's label, e.g. the normal class) and, where it is a pair of trials or of
configurations, its ``config`` (the cell without the compared axis, the seed and the unit).
``y`` is the number the claim averages: per unit first (``unit_means``), then over units.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from analysis.deltas import pair_rows
from analysis.inference import group_means, pooled_variance
from analysis.views import config_sql, label_column, pairing_key, rows, unit_sql
from study.analysis_options import DEFAULT_TREND_TOLERANCE, DEFAULT_UNIT

LAST_K = 5  # epochs at the end of training whose trend and oscillation are measured
CARRIED = ("study", "dataset", "unit", "config", "seed")


@dataclasses.dataclass(frozen=True)
class Design:
    """How a scope's claims pair and group trials."""

    baseline: str
    axis: str = "loss"
    unit: tuple[str, ...] = DEFAULT_UNIT
    last: int = LAST_K
    trend_tolerance: float = DEFAULT_TREND_TOLERANCE


def check_unit(axis: str, unit: Sequence[str]) -> None:
    """Raises ValueError when a unit field is the compared axis (pairs differ in it)."""
    key = pairing_key(axis)
    for field in unit:
        if field not in key:
            raise ValueError(f"analysis.unit: {field!r} is the compared axis {axis!r}; choose "
                             f"from {sorted(f for f in key if not f.endswith('_params'))}")


def _labelled(design: Design, studies: Sequence[str], where: str, relation: str = "trials"):
    check_unit(design.axis, design.unit)
    names = ", ".join("'" + s.replace("'", "''") + "'" for s in studies)
    return (f"SELECT *, {label_column(design.axis)} AS value, {unit_sql(design.unit)} AS unit, "
            f"{config_sql(design.axis, design.unit)} AS config FROM {relation} "
            f"WHERE study IN ({names}) AND {where}")


def finite(column: str) -> str:
    return f"{column} IS NOT NULL AND NOT isnan({column}) AND NOT isinf({column})"


def metric_pairs(con, design: Design, studies: Sequence[str], metric: str) -> list[dict]:
    """Pairs of complete trials equal but for the axis: y = other's metric - baseline's."""
    source = _labelled(design, studies, f"status = 'complete' AND {finite(metric)}")
    found = pair_rows(con, source, pairing_key(design.axis), metric, design.baseline,
                      extra=CARRIED)
    return [r | {"y": r["delta"]} for r in found]


def status_pairs(con, design: Design, studies: Sequence[str]) -> list[dict]:
    """Pairs of trials of any status: y = other diverged or failed (1/0) - baseline's."""
    source = _labelled(design, studies, "true", "(SELECT *, CAST(status <> 'complete' AS "
                       "INTEGER) AS not_complete FROM trials)")
    found = pair_rows(con, source, pairing_key(design.axis), "not_complete", design.baseline,
                      extra=CARRIED)
    return [r | {"y": float(r["delta"])} for r in found]


# Per complete trial, its last {k} epochs: the linear trend of ln(train_mse) over them (the
# fitted change from the first to the last, 0.05 = about 5%) and the SD of test_auroc and
# of ln(train_mse) around their own linear trends (residual SD on k - 2 degrees of freedom).
TAIL_SQL = """
WITH tail AS (
    SELECT *, row_number() OVER (PARTITION BY study, cell_id ORDER BY epoch DESC) AS back,
           CASE WHEN train_mse > 0 THEN ln(train_mse) END AS log_mse
    FROM epochs),
per_trial AS (
    SELECT study, cell_id, count(*) AS n_epochs,
           regr_slope(log_mse, epoch) * (count(log_mse) - 1) AS mse_trend,
           sqrt(greatest(regr_syy(log_mse, epoch) - regr_sxy(log_mse, epoch) ** 2
                / nullif(regr_sxx(log_mse, epoch), 0), 0) / nullif(count(log_mse) - 2, 0))
               AS mse_osc,
           regr_slope(test_auroc, epoch) * (count(test_auroc) - 1) AS auroc_trend,
           sqrt(greatest(regr_syy(test_auroc, epoch) - regr_sxy(test_auroc, epoch) ** 2
                / nullif(regr_sxx(test_auroc, epoch), 0), 0) / nullif(count(test_auroc) - 2, 0))
               AS auroc_osc
    FROM tail WHERE back <= {k} GROUP BY ALL)
SELECT t.*, p.n_epochs, p.mse_trend, p.mse_osc, p.auroc_trend, p.auroc_osc,
       abs(p.mse_trend) <= {tol} AS converged
FROM trials t JOIN per_trial p USING (study, cell_id)
WHERE t.status = 'complete'
"""


def tail_sql(last: int = LAST_K, tolerance: float = DEFAULT_TREND_TOLERANCE) -> str:
    """SQL of the per-trial last-epochs relation (TAIL_SQL).

    Raises:
        ValueError: when ``last`` is under 3 (a trend and a residual SD need 3 epochs).
    """
    if int(last) < 3:
        raise ValueError(f"last: {last} is not allowed; it must be >= 3 epochs (a trend "
                         "and the spread around it)")
    return TAIL_SQL.format(k=int(last), tol=float(tolerance))


def oscillation_pairs(con, design: Design, studies: Sequence[str]) -> list[dict]:
    """Pairs of trials: y = ln(other's test-AUROC SD around its trend / baseline's); pairs
    where either SD is 0 are left out (a ratio with 0 has no log)."""
    relation = (f"(SELECT *, ln(auroc_osc) AS log_osc FROM "
                f"({tail_sql(design.last, design.trend_tolerance)}) WHERE auroc_osc > 0)")
    source = _labelled(design, studies, finite("log_osc"), relation)
    found = pair_rows(con, source, pairing_key(design.axis), "log_osc", design.baseline,
                      extra=CARRIED, both=("converged",))
    return [r | {"y": r["delta"]} for r in found]


def seed_config_pairs(con, design: Design, studies: Sequence[str], y: str) -> list[dict]:
    """Configurations (2+ complete seeds) paired across the axis: n seeds and the sample
    variance across seeds of ``y`` (an SQL expression of a trial) on both sides."""
    key = pairing_key(design.axis, "seed")
    inner = _labelled(design, studies, f"status = 'complete' AND {finite(y)}",
                      f"(SELECT *, {y} AS y_value FROM trials)")
    group = ", ".join(key)
    source = (f"SELECT {group}, value, unit, config, count(*) AS n, "
              f"var_samp(y_value) AS v FROM ({inner}) "
              f"GROUP BY {group}, value, unit, config HAVING count(*) >= 2")
    return pair_rows(con, source, key, "v", design.baseline,
                     extra=("study", "dataset", "unit", "config"), both=("n",))


def seed_sd_units(pairs: list[dict[str, Any]]) -> dict[Any, float]:
    """Per unit: ln(other's seed SD / baseline's), each seed variance pooled over the
    unit's paired configurations; units where either pooled variance is 0 are left out."""
    by_unit: dict[Any, list[dict[str, Any]]] = {}
    for pair in pairs:
        by_unit.setdefault(pair["unit"], []).append(pair)
    out = {}
    for unit, members in by_unit.items():
        other = pooled_variance([p["other"] for p in members], [p["n"] for p in members])
        base = pooled_variance([p["base"] for p in members], [p["base_n"] for p in members])
        if other > 0 and base > 0:
            out[unit] = 0.5 * (math.log(other) - math.log(base))
    return out


def pair_units(pairs: list[dict[str, Any]]) -> dict[Any, float]:
    """Per unit: the mean of its pairs' y."""
    return group_means([p["y"] for p in pairs], [p["unit"] for p in pairs])


def config_means(pairs: list[dict[str, Any]]) -> tuple[list[float], list[Any]]:
    """Per (unit, configuration): the mean y over seeds, with its unit (for heterogeneity)."""
    means = group_means([p["y"] for p in pairs], [(p["unit"], p.get("config")) for p in pairs])
    return list(means.values()), [key[0] for key in means]


def compared(con, design: Design, studies: Sequence[str]) -> list[tuple[Any, str]]:
    """(dataset, value) of every compared value in a dataset that holds the baseline: the
    fixed family of claims, whatever their data turn out to be."""
    names = ", ".join("'" + s.replace("'", "''") + "'" for s in studies)
    found = rows(con, f"""
        WITH s AS (SELECT DISTINCT dataset, {label_column(design.axis)} AS value FROM trials
                   WHERE study IN ({names}))
        SELECT dataset, value FROM s
        WHERE value <> ? AND dataset IN (SELECT dataset FROM s WHERE value = ?)
        ORDER BY dataset, value""", [design.baseline, design.baseline])
    return [(r["dataset"], r["value"]) for r in found]
