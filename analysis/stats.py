"""Statistics over the stored tables: convergence variance and paired metric deltas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from study.cell import CELL_FIELDS


def rows(con, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """A query's result as a list of dicts (column name -> value)."""
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


CONVERGENCE_SQL = """
SELECT t.dataset, t.loss_label AS loss, e.epoch,
       count(*) AS n_cells,
       avg(e.train_loss) AS loss_mean, stddev_samp(e.train_loss) AS loss_std,
       stddev_samp(e.train_loss) / nullif(abs(avg(e.train_loss)), 0) AS loss_cv,
       avg(e.train_mse) AS mse_mean, stddev_samp(e.train_mse) AS mse_std,
       stddev_samp(e.train_mse) / nullif(abs(avg(e.train_mse)), 0) AS mse_cv
FROM epochs e JOIN trials t USING (study, cell_id)
WHERE t.status = 'complete'
GROUP BY ALL
ORDER BY t.dataset, loss, e.epoch
"""


def convergence(con) -> list[dict[str, Any]]:
    """Per (dataset, loss, epoch): mean, std and CV of the objective and of train_mse
    across every complete cell (hyperparameters and seeds pooled)."""
    return rows(con, CONVERGENCE_SQL)


def pairing_key(axis: str) -> list[str]:
    """Fields two trials must share to be a pair that differs only in ``axis``."""
    drop = {axis, f"{axis}_params"} if axis in ("loss", "model") else {axis}
    return [f for f in CELL_FIELDS if f not in drop]


def label_column(axis: str) -> str:
    return f"{axis}_label" if axis in ("loss", "model") else axis


def paired_deltas(
    con, baseline: str, axis: str = "loss", metric: str = "auroc"
) -> list[dict[str, Any]]:
    """Every pair (other, baseline) of complete trials equal on all fields but ``axis``.

    Returns rows with the pair's shared fields, ``value`` (the other's label) and
    ``delta`` = other's metric - baseline's metric.
    """
    label = label_column(axis)
    key = ", ".join(pairing_key(axis))
    return rows(
        con,
        f"""
        WITH t AS (SELECT * FROM trials WHERE status = 'complete' AND {metric} IS NOT NULL)
        SELECT o.{label} AS value, o.dataset, o.normal_class, o.cell_id,
               o.{metric} - b.{metric} AS delta
        FROM t o JOIN t b USING ({key})
        WHERE CAST(b.{label} AS VARCHAR) = ? AND CAST(o.{label} AS VARCHAR) <> ?
        ORDER BY value, o.dataset, o.normal_class
        """,
        [baseline, baseline],
    )


def unpaired(con, baseline: str, axis: str = "loss") -> list[dict[str, Any]]:
    """Trials (any status) with no complete partner at the baseline, or the baseline's
    trials with no partner: reported, never silently dropped."""
    label = label_column(axis)
    key = " AND ".join(f"o.{f} IS NOT DISTINCT FROM b.{f}" for f in pairing_key(axis))
    return rows(
        con,
        f"""
        SELECT o.{label} AS value, o.status, count(*) AS n
        FROM trials o
        WHERE NOT EXISTS (
            SELECT 1 FROM trials b
            WHERE {key} AND b.status = 'complete' AND o.status = 'complete'
              AND (CAST(b.{label} AS VARCHAR) = ?) <> (CAST(o.{label} AS VARCHAR) = ?))
        GROUP BY ALL ORDER BY value, o.status
        """,
        [baseline, baseline],
    )


def delta_summary(deltas: list[dict[str, Any]], tie: float = 1e-9) -> list[dict[str, Any]]:
    """Per compared value: n pairs, mean and median delta, wins/ties/losses."""
    import numpy as np

    out = []
    for value in sorted({d["value"] for d in deltas}):
        x = np.array([d["delta"] for d in deltas if d["value"] == value], dtype=float)
        out.append(
            {
                "value": value,
                "n_pairs": len(x),
                "mean_delta": float(x.mean()),
                "median_delta": float(np.median(x)),
                "wins": int((x > tie).sum()),
                "ties": int((abs(x) <= tie).sum()),
                "losses": int((x < -tie).sum()),
            }
        )
    return out
