"""Convergence and stability statistics, each one SQL over the ``trials``/``epochs`` views.

Objectives of different losses live on different scales; ``train_mse`` is the common
scale on which losses can be compared fairly. Only complete trials enter the curves;
diverged and failed trials are counted by ``divergence``.
"""

from __future__ import annotations

from typing import Any

from analysis.deltas import pair_rows, summarise
from analysis.stats import wilson_ci
from analysis.views import label_column, pairing_key, rows

LAST_K = 5  # epochs at the end of training over which oscillation is measured

GROUP = "t.dataset, t.model_label AS model, t.loss_label AS loss"

CONVERGENCE_SQL = f"""
SELECT {GROUP}, e.epoch,
       count(*) AS n_cells, count(DISTINCT t.seed) AS n_seeds,
       avg(e.train_loss) AS loss_mean, stddev_samp(e.train_loss) AS loss_std,
       stddev_samp(e.train_loss) / nullif(abs(avg(e.train_loss)), 0) AS loss_cv,
       avg(e.train_mse) AS mse_mean, stddev_samp(e.train_mse) AS mse_std,
       stddev_samp(e.train_mse) / nullif(abs(avg(e.train_mse)), 0) AS mse_cv
FROM epochs e JOIN trials t USING (study, cell_id)
WHERE t.status = 'complete'
GROUP BY ALL
ORDER BY ALL
"""

_CONFIG = ", ".join(f"t.{f}" for f in pairing_key("seed"))
CONVERGENCE_SEEDS_SQL = f"""
WITH per_config AS (
    SELECT {GROUP}, e.epoch, {_CONFIG},
           count(*) AS n_seeds,
           stddev_samp(e.train_loss) AS loss_std,
           stddev_samp(e.train_loss) / nullif(abs(avg(e.train_loss)), 0) AS loss_cv,
           stddev_samp(e.train_mse) AS mse_std,
           stddev_samp(e.train_mse) / nullif(abs(avg(e.train_mse)), 0) AS mse_cv
    FROM epochs e JOIN trials t USING (study, cell_id)
    WHERE t.status = 'complete'
    GROUP BY ALL
    HAVING count(*) >= 2)
SELECT dataset, model, loss, epoch,
       count(*) AS n_configs, sum(n_seeds) AS n_cells, max(n_seeds) AS n_seeds,
       avg(loss_std) AS loss_seed_std, avg(loss_cv) AS loss_seed_cv,
       avg(mse_std) AS mse_seed_std, avg(mse_cv) AS mse_seed_cv
FROM per_config
GROUP BY ALL
ORDER BY ALL
"""

# One row per complete trial: every trials column plus its statistics over the last k
# epochs ({k}). std over the last k epochs is the oscillation of a converged run.
TRIAL_TAIL_SQL = """
WITH tail AS (
    SELECT *, row_number() OVER (PARTITION BY study, cell_id ORDER BY epoch DESC) AS back
    FROM epochs),
per_trial AS (
    SELECT study, cell_id, count(*) AS n_epochs,
           stddev_samp(train_loss) AS loss_osc,
           stddev_samp(train_loss) / nullif(abs(avg(train_loss)), 0) AS loss_rel_osc,
           stddev_samp(train_mse) AS mse_osc,
           stddev_samp(test_auroc) AS auroc_osc
    FROM tail WHERE back <= {k} GROUP BY ALL),
peak AS (
    SELECT study, cell_id, max(test_auroc) AS auroc_peak,
           arg_max(epoch, test_auroc) AS peak_epoch, arg_max(test_auroc, epoch) AS last_auroc
    FROM epochs GROUP BY ALL)
SELECT t.*, p.n_epochs, p.loss_osc, p.loss_rel_osc, p.mse_osc, p.auroc_osc,
       k.auroc_peak, k.peak_epoch, k.auroc_peak - k.last_auroc AS auroc_drop
FROM trials t JOIN per_trial p USING (study, cell_id) JOIN peak k USING (study, cell_id)
WHERE t.status = 'complete'
"""

OSCILLATION_SQL = """
SELECT dataset, model_label AS model, loss_label AS loss, min(n_epochs) AS last_k,
       count(*) AS n_cells, count(DISTINCT seed) AS n_seeds,
       avg(loss_osc) AS loss_osc_mean, avg(loss_rel_osc) AS loss_rel_osc_mean,
       avg(mse_osc) AS mse_osc_mean, median(mse_osc) AS mse_osc_median
FROM ({tail})
GROUP BY ALL ORDER BY ALL
"""

AUROC_STABILITY_SQL = """
SELECT dataset, model_label AS model, loss_label AS loss, min(n_epochs) AS last_k,
       count(*) AS n_cells, count(DISTINCT seed) AS n_seeds,
       avg(auroc_osc) AS auroc_std_last_k, median(auroc_osc) AS auroc_std_last_k_median,
       avg(auroc_drop) AS peak_to_final_drop, avg(auroc_peak) AS peak_auroc_mean
FROM ({tail})
WHERE auroc_osc IS NOT NULL
GROUP BY ALL ORDER BY ALL
"""

DIVERGENCE_SQL = """
SELECT dataset, model_label AS model, loss_label AS loss,
       count(*) AS n_cells, count(DISTINCT seed) AS n_seeds,
       count(*) FILTER (status = 'complete') AS n_complete,
       count(*) FILTER (status = 'diverged') AS n_diverged,
       count(*) FILTER (status = 'failed') AS n_failed
FROM trials GROUP BY ALL ORDER BY ALL
"""


def trial_tail_sql(last: int = LAST_K) -> str:
    """SQL of the per-trial last-epochs relation (see TRIAL_TAIL_SQL).

    Raises:
        ValueError: when ``last`` is under 2 (a std needs two epochs).
    """
    if int(last) < 2:
        raise ValueError(f"last: {last} is not allowed; it must be >= 2 epochs")
    return TRIAL_TAIL_SQL.format(k=int(last))


def convergence(con) -> list[dict[str, Any]]:
    """Per (dataset, model, loss, epoch): mean, std and CV of the objective and of
    train_mse across every complete cell (hyperparameters and seeds pooled)."""
    return rows(con, CONVERGENCE_SQL)


def convergence_seeds(con) -> list[dict[str, Any]]:
    """Per (dataset, model, loss, epoch): std and CV across the seeds of one configuration,
    averaged over configurations with at least two complete seeds."""
    return rows(con, CONVERGENCE_SEEDS_SQL)


def oscillation(con, last: int = LAST_K) -> list[dict[str, Any]]:
    """Per (dataset, model, loss): mean std of each trial's last ``last`` epochs."""
    return rows(con, OSCILLATION_SQL.format(tail=trial_tail_sql(last)))


def auroc_stability(con, last: int = LAST_K) -> list[dict[str, Any]]:
    """Per (dataset, model, loss): std of test_auroc over each trial's last epochs and its
    drop from the peak epoch (IAEAD fig. 3)."""
    return rows(con, AUROC_STABILITY_SQL.format(tail=trial_tail_sql(last)))


def divergence(con) -> list[dict[str, Any]]:
    """Per (dataset, model, loss): trial counts by status and the diverged share (Wilson CI)."""
    out = rows(con, DIVERGENCE_SQL)
    for r in out:
        r["diverged_share"] = r["n_diverged"] / r["n_cells"]
        r["share_ci_low"], r["share_ci_high"] = wilson_ci(r["n_diverged"], r["n_cells"])
    return out


def tail_pairs(
    con, baseline: str, column: str, axis: str = "loss", last: int = LAST_K,
    extra: tuple[str, ...] = ("dataset", "seed"),
) -> list[dict[str, Any]]:
    """Pairs of trials (equal but for ``axis``) on a last-epochs statistic, e.g. mse_osc."""
    source = (
        f"SELECT *, {label_column(axis)} AS value FROM ({trial_tail_sql(last)}) "
        f"WHERE {column} IS NOT NULL AND NOT isnan({column})"
    )
    return pair_rows(con, source, pairing_key(axis), column, baseline, extra=extra)


def seed_configs(axis: str = "loss") -> str:
    """SQL: per configuration (all fields but seed), std and mean of AUROC across seeds."""
    key = ", ".join(pairing_key("seed"))
    return (
        f"SELECT {key}, {label_column(axis)} AS value, any_value(model_label) AS model_label, "
        "count(*) AS n_seeds, "
        "stddev_samp(auroc) AS seed_std, avg(auroc) AS seed_mean FROM trials "
        "WHERE status = 'complete' AND auroc IS NOT NULL AND NOT isnan(auroc) "
        f"GROUP BY {key}, value HAVING count(*) >= 2"
    )


def seed_stability(con) -> list[dict[str, Any]]:
    """Per (dataset, model, loss): mean over configurations of the std of AUROC across seeds."""
    return rows(
        con,
        f"""SELECT dataset, model_label AS model, value AS loss,
                   count(*) AS n_configs, sum(n_seeds) AS n_cells, max(n_seeds) AS n_seeds,
                   avg(seed_std) AS auroc_seed_std, median(seed_std) AS auroc_seed_std_median,
                   max(seed_std) AS auroc_seed_std_max
            FROM ({seed_configs()})
            GROUP BY ALL ORDER BY ALL""",
    )


def seed_stability_pairs(con, baseline: str, axis: str = "loss") -> list[dict[str, Any]]:
    """Configurations paired across ``axis``; delta = other's seed std - baseline's."""
    key = pairing_key("seed", axis)
    return pair_rows(
        con, seed_configs(axis), key, "seed_std", baseline, extra=("dataset",), both=("n_seeds",)
    )


def seed_stability_summary(con, baseline: str, axis: str = "loss") -> list[dict[str, Any]]:
    """Summary of ``seed_stability_pairs``: negative deltas mean steadier than the baseline."""
    return summarise(seed_stability_pairs(con, baseline, axis))


AUROC_CURVES_SQL = f"""
SELECT {GROUP}, e.epoch, count(e.test_auroc) AS n_cells, count(DISTINCT t.seed) AS n_seeds,
       avg(e.test_auroc) AS auroc_mean, stddev_samp(e.test_auroc) AS auroc_std
FROM epochs e JOIN trials t USING (study, cell_id)
WHERE t.status = 'complete' AND e.test_auroc IS NOT NULL
GROUP BY ALL ORDER BY ALL
"""

# A few individual trials per (dataset, model, loss), chosen by cell id (deterministic).
AUROC_TRACES_SQL = f"""
WITH picked AS (
    SELECT study, cell_id, row_number() OVER (
        PARTITION BY dataset, model_label, loss_label ORDER BY cell_id) AS pick
    FROM trials WHERE status = 'complete')
SELECT {GROUP}, t.cell_id, e.epoch, e.test_auroc
FROM epochs e JOIN trials t USING (study, cell_id) JOIN picked p USING (study, cell_id)
WHERE p.pick <= $1 AND e.test_auroc IS NOT NULL
ORDER BY ALL
"""


def auroc_curves(con) -> list[dict[str, Any]]:
    """Per (dataset, model, loss, epoch): mean and std of test_auroc across complete cells."""
    return rows(con, AUROC_CURVES_SQL)


def auroc_traces(con, per_group: int = 12) -> list[dict[str, Any]]:
    """test_auroc per epoch of up to ``per_group`` trials per (dataset, model, loss)."""
    return rows(con, AUROC_TRACES_SQL, [per_group])
