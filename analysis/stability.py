"""Stability as the papers mean it: how much a result moves when only the seed changes.

Per (dataset, model, loss), the variance of a trial's result splits into components of a
nested layout (unit > configuration > seed), estimated by ANOVA moments (what REML gives
for a balanced layout): the seed SD (within a configuration: stability), the configuration
SD (between configurations of one unit: the grid's spread, a description) and the unit SD
(between units). ``final_train_mse`` is taken on the log scale, where losses of different
levels compare; AUROC as is. Fewer than RECOMMENDED_SEEDS seeds estimate a seed SD poorly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from analysis.claim_inputs import Design, finite, seed_config_pairs
from analysis.inference import pooled_variance
from analysis.views import config_sql, rows, unit_sql
from study.analysis_options import DEFAULT_UNIT

RECOMMENDED_SEEDS = 5
# measure -> (SQL of the value per trial, the trials it is defined for)
MEASURES = {
    "AUROC": ("auroc", finite("auroc")),
    "ln final train_mse": ("ln(final_train_mse)",
                           "final_train_mse > 0 AND " + finite("final_train_mse")),
}


def _nan_to_zero(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def components(groups: list[dict[str, Any]]) -> dict[str, float]:
    """Variance components from per-configuration rows (unit, n, mean, v: sample variance
    over its seeds, None under 2 seeds).

    Returns:
        seed_sd, config_sd, unit_sd (nan where the layout cannot give one; a negative
        moment estimate is 0).
    """
    seeded = [g for g in groups if g["n"] >= 2 and g["v"] is not None]
    seed_var = pooled_variance([g["v"] for g in seeded], [g["n"] for g in seeded])
    per_unit: dict[Any, list[float]] = {}
    for g in groups:
        per_unit.setdefault(g["unit"], []).append(g["mean"])
    several = [m for m in per_unit.values() if len(m) > 1]
    # variance of configuration means within a unit: config variance + seed variance / n
    between = pooled_variance([float(np.var(m, ddof=1)) for m in several],
                              [len(m) for m in several])
    seeds = len(groups) / sum(1 / g["n"] for g in groups)  # harmonic mean seeds per config
    config_var = between - _nan_to_zero(seed_var) / seeds
    unit_var = math.nan
    if len(per_unit) > 1:  # variance of unit means: unit variance + between / n configs
        configs = float(np.mean([len(m) for m in per_unit.values()]))
        unit_var = float(np.var([np.mean(m) for m in per_unit.values()], ddof=1)) \
            - _nan_to_zero(between) / configs
    return {name: math.nan if math.isnan(value) else math.sqrt(max(value, 0.0))
            for name, value in (("seed_sd", seed_var), ("config_sd", config_var),
                                ("unit_sd", unit_var))}


def config_groups(con, unit: tuple[str, ...] = DEFAULT_UNIT, axis: str = "loss"
                  ) -> dict[tuple, list[dict[str, Any]]]:
    """Per (dataset, model, loss, measure): per-configuration n, mean and variance."""
    out: dict[tuple, list[dict[str, Any]]] = {}
    for measure, (expr, defined) in MEASURES.items():
        found = rows(con, f"""
            SELECT dataset, model_label AS model, loss_label AS loss, {unit_sql(unit)} AS unit,
                   {config_sql(axis, unit)} AS config, count(*) AS n, avg(y) AS mean,
                   var_samp(y) AS v
            FROM (SELECT *, {expr} AS y FROM trials WHERE status = 'complete' AND {defined})
            GROUP BY ALL ORDER BY ALL""")
        for r in found:
            out.setdefault((r["dataset"], r["model"], r["loss"], measure), []).append(r)
    return out


def seed_components(con, unit: tuple[str, ...] = DEFAULT_UNIT) -> list[dict[str, Any]]:
    """The stability table: per (dataset, model, loss, measure), the seed, configuration
    and unit SDs with their evidence (n configurations with 2+ seeds, n cells, n seeds)."""
    out = []
    for (dataset, model, loss, measure), groups in sorted(config_groups(con, unit).items(),
                                                          key=lambda kv: str(kv[0])):
        found = components(groups)
        seeds = max(g["n"] for g in groups)
        out.append({"dataset": dataset, "model": model, "loss": loss, "measure": measure,
                    "seed SD": found["seed_sd"], "configuration SD": found["config_sd"],
                    "unit SD": found["unit_sd"],
                    "n configs (2+ seeds)": sum(g["n"] >= 2 for g in groups),
                    "n cells": sum(g["n"] for g in groups), "n seeds": seeds,
                    "note": "" if seeds >= RECOMMENDED_SEEDS else
                    f"{seeds} seed(s) < {RECOMMENDED_SEEDS}: seed SD poorly estimated"})
    return out


def unit_seed_sd(con, baseline: str, axis: str = "loss",
                 unit: tuple[str, ...] = DEFAULT_UNIT) -> list[dict[str, Any]]:
    """Per (dataset, compared value, unit, measure): the seed SD of the baseline and of the
    other value, each pooled over the unit's configurations paired across the axis (what
    the seed-stability claims average, as a log ratio, over units)."""
    design = Design(baseline, axis, unit)
    studies = [r["study"] for r in rows(con, "SELECT DISTINCT study FROM trials")]
    out = []
    for measure, (expr, defined) in MEASURES.items():
        pairs = seed_config_pairs(con, design, studies, f"CASE WHEN {defined} THEN {expr} END")
        groups: dict[tuple, list[dict[str, Any]]] = {}
        for p in pairs:
            groups.setdefault((p["dataset"], p["value"], p["unit"]), []).append(p)
        for (dataset, value, label), members in sorted(groups.items(), key=str):
            base = pooled_variance([p["base"] for p in members], [p["base_n"] for p in members])
            other = pooled_variance([p["other"] for p in members], [p["n"] for p in members])
            out.append({"dataset": dataset, "value": value, "unit": label, "measure": measure,
                        "baseline_seed_sd": math.sqrt(base), "other_seed_sd": math.sqrt(other),
                        "n_configs": len(members),
                        "n_seeds": max(max(p["n"], p["base_n"]) for p in members)})
    return out
