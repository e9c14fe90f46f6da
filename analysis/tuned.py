"""Tuned comparisons (search: optuna): each group's tuned best, its budget, and the paired
comparison of the tuned bests between losses (LAMP Table 2's way, with an equal budget).

A group (study/tuned_groups.py) is one combination of a tuned study's compare and vary axes; its
rows share a ``group_id``. A group's best is its complete row with the best value of the
column the study selected on (``tune_metric``: a validation figure unless the spec
allowed test labels); ties go to the earlier trial. Only that column is read to choose:
the test metrics of the chosen row are reported, never used to choose it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from analysis.deltas import pair_rows, summarise, trial_source
from analysis.views import label_column, pairing_key, rows
from study.search_options import SELECT_METRICS

SPENT = "('complete', 'diverged', 'pruned')"  # statuses that spend a trial of the budget


def objective_sql() -> str:
    """SQL: what a tuned row was selected by, as a number to minimise; NULL for a row that
    cannot be chosen (not complete, or no value of its tune_metric)."""
    cases = " ".join(f"WHEN '{m}' THEN {'-' if mode == 'max' else ''}{m}"
                     for m, (mode, _) in SELECT_METRICS.items())
    return f"CASE WHEN status = 'complete' THEN CASE tune_metric {cases} END END"


TUNED_TRIALS_SQL = f"""
WITH t AS (SELECT *, {objective_sql()} AS objective FROM trials WHERE group_id IS NOT NULL),
u AS (SELECT *, coalesce(NOT isnan(objective), false) AS usable FROM t)
SELECT *, CASE WHEN usable THEN row_number() OVER (
           PARTITION BY study, group_id, usable ORDER BY objective, group_trial) END
       AS group_rank
FROM u
"""

TUNED_BEST_SQL = f"""
WITH r AS ({TUNED_TRIALS_SQL}),
budget AS (
    SELECT study, group_id, count(*) FILTER (status IN {SPENT}) AS n_trials,
           count(*) FILTER (status = 'complete') AS n_complete,
           count(*) FILTER (status = 'pruned') AS n_pruned,
           count(*) FILTER (status = 'diverged') AS n_diverged,
           count(*) FILTER (status = 'failed') AS n_failed,
           sum(epochs_run) AS epochs_trained, sum(wall_s) AS train_s
    FROM r GROUP BY study, group_id)
SELECT r.*, budget.* EXCLUDE (study, group_id)
FROM r JOIN budget USING (study, group_id)
WHERE r.group_rank = 1
"""


def has_tuned(con) -> bool:
    """Whether the trials hold rows of a tuned study."""
    return rows(con, "SELECT count(*) AS n FROM trials WHERE group_id IS NOT NULL")[0]["n"] > 0


def has_grid(con) -> bool:
    """Whether the trials hold rows of a grid study."""
    return rows(con, "SELECT count(*) AS n FROM trials WHERE group_id IS NULL")[0]["n"] > 0


def grid_only(con):
    """The connection with its ``trials`` view narrowed to grid rows (the grid sections'
    numbers then cover the grid alone); the full view stays as ``trials_all``."""
    (kind,) = con.execute("SELECT table_type FROM information_schema.tables "
                          "WHERE table_name = 'trials'").fetchone()
    con.execute(f"ALTER {'TABLE' if kind == 'BASE TABLE' else 'VIEW'} trials "
                "RENAME TO trials_all")
    con.execute("CREATE VIEW trials AS SELECT * FROM trials_all WHERE group_id IS NULL")
    return con


def tuned_trials(con) -> list[dict[str, Any]]:
    """Every tuned row with its selection objective and its rank in its group."""
    return rows(con, f"SELECT * FROM ({TUNED_TRIALS_SQL}) ORDER BY study, group_id, group_trial")


def config_text(row: dict[str, Any]) -> str:
    """The tuned values of a row, e.g. ``latent_dim=8 lr=0.00812``."""
    parts = []
    for field in (row.get("tuned_axes") or "").split(","):
        if not field:
            continue
        value = row[field]
        if isinstance(value, float):
            value = f"{value:.4g}"
        params = row.get(f"{field}_params")
        parts.append(f"{field}={value}{params if params and params != '{}' else ''}")
    return " ".join(parts)


def group_budgets(con) -> list[dict[str, Any]]:
    """Per group: its fields, its budget spent and its best (NULL where it has none)."""
    return rows(con, f"""
        WITH r AS ({TUNED_TRIALS_SQL})
        SELECT study, group_id, dataset, normal_class, seed, model_label AS model,
               loss_label AS loss, count(*) FILTER (status IN {SPENT}) AS n_trials,
               count(*) FILTER (status = 'pruned') AS n_pruned,
               count(*) FILTER (status = 'diverged') AS n_diverged,
               count(*) FILTER (status = 'failed') AS n_failed,
               sum(epochs_run) AS epochs_trained, round(sum(wall_s), 1) AS train_s,
               max(group_rank = 1) AS has_best
        FROM r GROUP BY ALL ORDER BY ALL""")


def tuned_best(con, axis: str = "loss") -> list[dict[str, Any]]:
    """Per group: its best row (config, selection value, test metrics) and budget spent."""
    found = rows(con, f"SELECT *, {label_column(axis)} AS value FROM ({TUNED_BEST_SQL}) "
                 "ORDER BY study, dataset, normal_class, seed, value")
    return [{
        "study": r["study"], "group_id": r["group_id"], "dataset": r["dataset"],
        "normal_class": r["normal_class"],
        "seed": r["seed"], "model": r["model_label"], axis: r["value"],
        "best_config": config_text(r), "selected_on": r["tune_metric"],
        "selected_value": r[r["tune_metric"]], "auroc": r["auroc"], "aupr_in": r["aupr_in"],
        "aupr_out": r["aupr_out"], "n_trials": r["n_trials"], "n_pruned": r["n_pruned"],
        "n_diverged": r["n_diverged"], "n_failed": r["n_failed"],
        "epochs_trained": r["epochs_trained"], "best_cell": r["cell_id"],
    } for r in found]


def tuned_pairs(
    con, baseline: str, axis: str = "loss", metric: str = "auroc", by: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Tuned bests paired across ``axis``: two groups equal on every field but ``axis``
    and the tuned ones; delta = other's best's ``metric`` - baseline's best's."""
    out: list[dict[str, Any]] = []
    kinds = rows(con, "SELECT DISTINCT tuned_axes FROM trials WHERE group_id IS NOT NULL")
    for tuned in sorted(r["tuned_axes"] or "" for r in kinds):
        literal = "'" + tuned.replace("'", "''") + "'"
        source = (f"SELECT *, {label_column(axis)} AS value FROM ({TUNED_BEST_SQL}) "
                  f"WHERE tuned_axes = {literal} AND {metric} IS NOT NULL "
                  f"AND NOT isnan({metric})")
        key = pairing_key(axis, *[f for f in tuned.split(",") if f])
        out += pair_rows(con, source, key, metric, baseline, by=by,
                         extra=("dataset", "normal_class", "seed"), both=("n_trials",))
    return out


def grid_pairs(
    con, baseline: str, axis: str = "loss", metric: str = "auroc", by: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Grid rows (no group_id) paired across ``axis`` at equal hyperparameters."""
    source = trial_source(axis, metric) + " AND group_id IS NULL"
    return pair_rows(con, source, pairing_key(axis), metric, baseline, by=by,
                     extra=("dataset", "normal_class", "seed"))


def tuned_summary(
    con, baseline: str, axis: str = "loss", metric: str = "auroc", by: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Per value (and ``by``): the paired tuned-best deltas summarised (t interval over
    classes, wins/ties/losses of pairs)."""
    return summarise(tuned_pairs(con, baseline, axis, metric, by), by)


def side_by_side(con, baseline: str, axis: str = "loss", metric: str = "auroc") -> list[dict]:
    """Per dataset and value: the tuned-best comparison beside the grid's paired one."""
    tuned = {(r["dataset"], r["value"]): r
             for r in tuned_summary(con, baseline, axis, metric, ["dataset"])}
    grid = {(r["dataset"], r["value"]): r
            for r in summarise(grid_pairs(con, baseline, axis, metric, ["dataset"]), ["dataset"])}
    out = []
    for dataset, value in sorted(set(tuned) | set(grid), key=str):
        row: dict[str, Any] = {"dataset": dataset, "value": value}
        for name, found in (("tuned", tuned), ("grid", grid)):
            s = found.get((dataset, value), {})
            row |= {f"{name}_n": s.get("n_pairs", 0), f"{name}_mean_delta": s.get("mean_delta"),
                    f"{name}_ci": _ci(s), f"{name}_p": s.get("p"),
                    f"{name}_w/t/l": f"{s['wins']}/{s['ties']}/{s['losses']}" if s else ""}
        out.append(row)
    return out


def _ci(summary: dict[str, Any]) -> str:
    low, high = summary.get("ci_low"), summary.get("ci_high")
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return ""
    return f"[{low:+.4f}, {high:+.4f}]"


def per_class_table(
    best: list[dict[str, Any]], baseline: str, axis: str = "loss", metric: str = "auroc",
) -> list[dict[str, Any]]:
    """LAMP Table 2's layout: per (dataset, normal class), each value's tuned-best metric
    (mean over seeds) and the other values' difference from the baseline."""
    cells: dict[tuple, dict[str, list[float]]] = {}
    for r in best:
        if r[metric] is not None:
            cells.setdefault((r["dataset"], r["normal_class"]), {}).setdefault(
                r[axis], []).append(r[metric])
    values = sorted({v for per in cells.values() for v in per}, key=lambda v: (v != baseline, v))
    out = []
    for (dataset, normal_class), per in sorted(cells.items(), key=str):
        row: dict[str, Any] = {"dataset": dataset, "normal_class": normal_class,
                               "n_seeds": max(len(v) for v in per.values())}
        means = {v: sum(per[v]) / len(per[v]) for v in values if v in per}
        row |= {v: means.get(v) for v in values}
        for v in values:
            if v != baseline and v in means and baseline in means:
                row[f"{v} − {baseline}"] = means[v] - means[baseline]
        out.append(row)
    return out


def budget_table(con, axis: str = "loss") -> list[dict[str, Any]]:
    """Per study and value: groups, trials spent per group (min and max: equal budget
    shows as min = max), outcomes and the epochs and seconds trained."""
    return rows(con, f"""
        WITH g AS (
            SELECT study, group_id, {label_column(axis)} AS "{axis}",
                   count(*) FILTER (status IN {SPENT}) AS spent,
                   count(*) FILTER (status = 'complete') AS complete,
                   count(*) FILTER (status = 'pruned') AS pruned,
                   count(*) FILTER (status = 'diverged') AS diverged,
                   count(*) FILTER (status = 'failed') AS failed,
                   sum(epochs_run) AS epochs, sum(wall_s) AS seconds
            FROM trials WHERE group_id IS NOT NULL GROUP BY ALL)
        SELECT study, "{axis}", count(*) AS n_groups, sum(spent) AS trials,
               min(spent) AS min_per_group, max(spent) AS max_per_group,
               sum(complete) AS complete, sum(pruned) AS pruned, sum(diverged) AS diverged,
               sum(failed) AS failed, sum(epochs) AS epochs_trained,
               round(sum(seconds), 1) AS train_s
        FROM g GROUP BY ALL ORDER BY ALL""")
