"""Paired comparisons: pair rows equal on every cell field but one axis, summarise deltas.

A pair is (other, baseline): two complete trials (or two configurations, or two
per-trial statistics) that share every field of the pairing key. Every trial of a
compared value that is in no pair is reported by ``unpaired``, never dropped silently.
A summary's interval is taken over independent clusters, never over pairs that share a
test split: the units of inference (normal classes) where a group holds two or more, else
the configurations of its one unit, else its pairs (a description, said so in ``over``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from analysis.inference import estimate, group_means
from analysis.views import config_sql, label_column, pairing_key, rows
from study.analysis_options import DEFAULT_UNIT

TIE = 1e-9  # |delta| at or below this is a tie (AUROC is a ratio of counts)
METRICS = ("auroc", "aupr_in", "aupr_out", "final_train_loss", "final_train_mse")


def check_metric(metric: str, choices: Sequence[str] = METRICS) -> str:
    """Raises ValueError naming an unknown metric and the choices."""
    if metric not in choices:
        raise ValueError(f"unknown metric {metric!r}; choose from {sorted(choices)}")
    return metric


def axis_values(con, axis: str = "loss") -> list[str]:
    """Every value of an axis present in the trials, as its readable label."""
    found = rows(con, f"SELECT DISTINCT {label_column(axis)} AS v FROM trials ORDER BY v")
    return [r["v"] for r in found]


def check_baseline(con, baseline: str, axis: str = "loss") -> str:
    """Raises ValueError when the baseline is not a value of the axis in these trials."""
    values = axis_values(con, axis)
    if baseline not in values:
        raise ValueError(f"baseline {axis} {baseline!r} not found in trials; choose from {values}")
    return baseline


def pair_rows(
    con, source: str, key: Sequence[str], metric: str, baseline: str,
    by: Sequence[str] = (), extra: Sequence[str] = (), both: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Pairs of rows of a relation that share ``key`` and differ in ``value``.

    Args:
        source: SQL of a relation with the key columns, ``value`` and ``metric``.
        key: columns the two rows of a pair share.
        metric: the column compared; delta = other - baseline.
        baseline: the ``value`` every other value is compared against.
        by: grouping columns, each in ``key``.
        extra: further columns to carry from the other row into each pair row.
        both: columns to carry from both rows, the baseline's as ``base_<column>``.
    Returns:
        Rows: value, the ``by``, ``extra`` and ``both`` columns, other, base, delta.
    Raises:
        ValueError: when a grouping column is not shared by both trials of a pair.
    """
    for column in by:
        if column not in key:
            raise ValueError(f"cannot group pairs by {column!r}; choose from {sorted(key)}")
    columns = [f"o.{c}" for c in dict.fromkeys([*by, *extra, *both])]
    carried = ", ".join(columns + [f"b.{c} AS base_{c}" for c in both])
    return rows(
        con,
        f"""
        WITH s AS ({source})
        SELECT o.value AS value, {carried + ',' if carried else ''}
               o.{metric} AS other, b.{metric} AS base, o.{metric} - b.{metric} AS delta
        FROM s o JOIN s b USING ({", ".join(key)})
        WHERE b.value = ? AND o.value <> ?
        ORDER BY ALL
        """,
        [baseline, baseline],
    )


def trial_source(axis: str, metric: str) -> str:
    """The relation of complete trials with a metric, labelled by the compared axis and by
    their configuration (``config``: the cell without the axis, seed, class and dataset)."""
    return (
        f"SELECT *, {label_column(axis)} AS value, {config_sql(axis, DEFAULT_UNIT)} AS config "
        "FROM trials "
        f"WHERE status = 'complete' AND {metric} IS NOT NULL AND NOT isnan({metric})"
    )


def paired_deltas(
    con, baseline: str, axis: str = "loss", metric: str = "auroc", by: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Every pair (other, baseline) of complete trials equal on all fields but ``axis``.

    Returns:
        Rows: value, the ``by`` columns, dataset, normal_class, config, seed, other, base,
        delta.
    """
    check_metric(metric)
    return pair_rows(
        con, trial_source(axis, metric), pairing_key(axis), metric, baseline,
        by=by, extra=("dataset", "normal_class", "config", "seed"),
    )


def clusters(pairs: list[dict[str, Any]], by: Sequence[str] = (),
             unit: Sequence[str] = DEFAULT_UNIT) -> tuple[list[Any], str]:
    """Each pair's independent cluster and its kind: the unit (fields of ``unit`` the pairs
    carry, less ``by``) where there are 2+, else the configuration, else the pair itself."""
    fields = [f for f in unit if pairs and f in pairs[0] and f not in by]
    found = [tuple(p[f] for f in fields) for p in pairs]
    if fields and len(set(found)) > 1:
        return found, " × ".join(f for f in fields if f != "dataset") or fields[0]
    configs = [p.get("config") for p in pairs]
    if len(set(configs)) > 1:
        return configs, "configuration"
    return list(range(len(pairs))), "pair"


def summarise(pairs: list[dict[str, Any]], by: Sequence[str] = (),
              unit: Sequence[str] = DEFAULT_UNIT) -> list[dict[str, Any]]:
    """Per compared value (and group): n pairs and seeds, the clusters the interval is over
    (see ``clusters``), mean delta with its 95% t interval and t-test p over the cluster
    means, the median delta, and wins/ties/losses counting pairs."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for pair in pairs:
        groups.setdefault((pair["value"], *(pair[c] for c in by)), []).append(pair)
    out = []
    for group_key in sorted(groups, key=lambda k: tuple(str(v) for v in k)):
        members = groups[group_key]
        x = np.array([p["delta"] for p in members], dtype=float)
        labels, kind = clusters(members, by, unit)
        est = estimate(list(group_means(x, labels).values()))
        wins, losses = int((x > TIE).sum()), int((x < -TIE).sum())
        out.append({
            "value": group_key[0], **dict(zip(by, group_key[1:], strict=True)),
            "n_pairs": len(x), "n_seeds": _seed_count(members), "over": kind,
            "n_over": est.n_units, "mean_delta": float(x.mean()), "ci_low": est.ci_low,
            "ci_high": est.ci_high, "p": est.p, "median_delta": float(np.median(x)),
            "wins": wins, "ties": len(x) - wins - losses, "losses": losses,
        })
    return out


def _seed_count(pairs: list[dict[str, Any]]) -> int:
    if pairs and "seed" in pairs[0]:
        return len({p["seed"] for p in pairs})
    return max((int(p.get("n_seeds") or 0) for p in pairs), default=0)


def delta_summary(
    con, baseline: str, axis: str = "loss", metric: str = "auroc", by: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """``summarise(paired_deltas(...))``: the table a reader compares losses by."""
    return summarise(paired_deltas(con, baseline, axis, metric, by), by)


def unpaired(
    con, baseline: str, axis: str = "loss", metric: str = "auroc"
) -> list[dict[str, Any]]:
    """Trials of any value that are in no (other, baseline) pair, with the reason.

    Returns:
        Rows: value, status, reason, n_cells, n_seeds, example cell ids.
    """
    check_metric(metric)
    key = pairing_key(axis)
    usable = f"(status = 'complete' AND {metric} IS NOT NULL AND NOT isnan({metric}))"
    return rows(
        con,
        f"""
        WITH s AS (SELECT *, {label_column(axis)} AS value, {usable} AS usable FROM trials),
        paired AS (
            SELECT o.study AS ps, o.cell_id AS pc, b.study AS bs, b.cell_id AS bc
            FROM s o JOIN s b USING ({", ".join(key)})
            WHERE o.usable AND b.usable AND b.value = ? AND o.value <> ?)
        SELECT value, status,
               CASE WHEN status <> 'complete' THEN 'trial ' || status
                    WHEN NOT usable THEN 'no {metric}'
                    WHEN value = ? THEN 'no complete partner at any other value'
                    ELSE 'no complete {baseline.replace("'", "''")} partner' END AS reason,
               count(*) AS n_cells, count(DISTINCT seed) AS n_seeds,
               array_to_string(list(cell_id ORDER BY cell_id)[1:3], ' ') AS example_cells
        FROM s
        WHERE NOT EXISTS (
            SELECT 1 FROM paired p
            WHERE (p.ps = s.study AND p.pc = s.cell_id) OR (p.bs = s.study AND p.bc = s.cell_id))
        GROUP BY ALL ORDER BY ALL
        """,
        [baseline, baseline, baseline],
    )
