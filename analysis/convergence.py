"""Convergence and stability descriptions, each one SQL over the ``trials``/``epochs`` views.

Objectives of different losses live on different scales; ``train_mse`` is the common
scale on which losses can be compared fairly. Only complete trials enter the curves;
diverged and failed trials are counted by ``divergence``. The spread across cells pools
hyperparameters and seeds: it describes the grid, and no claim is drawn from it (the
stability claims use the seed-to-seed spread: analysis.stability, analysis.claims).
Oscillation is the spread of the last k epochs around their own linear trend, with the
trend itself beside it: a curve still falling has not converged (analysis.claim_inputs).
"""

from __future__ import annotations

from typing import Any

from analysis.claim_inputs import LAST_K, tail_sql
from analysis.inference import wilson_ci
from analysis.views import label_column, pairing_key, rows

TRIALS_SQL = """
SELECT study, dataset, model_label AS model, loss_label AS loss, status,
       count(*) AS n_cells, count(DISTINCT seed) AS n_seeds,
       avg(auroc) AS mean_auroc, avg(aupr_in) AS mean_aupr_in, avg(aupr_out) AS mean_aupr_out
FROM trials GROUP BY ALL ORDER BY ALL
"""

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

OSCILLATION_SQL = """
SELECT dataset, model_label AS model, loss_label AS loss, min(n_epochs) AS last_k,
       count(*) AS n_cells, count(DISTINCT seed) AS n_seeds,
       avg(mse_osc) AS mse_osc_mean, median(mse_osc) AS mse_osc_median,
       avg(mse_trend) AS mse_trend_mean,
       count(*) FILTER (NOT converged) AS n_not_converged
FROM ({tail})
GROUP BY ALL ORDER BY ALL
"""

AUROC_STABILITY_SQL = """
WITH peak AS (
    SELECT study, cell_id, max(test_auroc) AS auroc_peak, arg_max(test_auroc, epoch) AS last
    FROM epochs GROUP BY ALL)
SELECT dataset, model_label AS model, loss_label AS loss, min(n_epochs) AS last_k,
       count(*) AS n_cells, count(DISTINCT seed) AS n_seeds,
       avg(auroc_osc) AS auroc_osc_mean, median(auroc_osc) AS auroc_osc_median,
       avg(auroc_trend) AS auroc_trend_mean, avg(auroc_peak - last) AS peak_to_final_drop,
       avg(auroc_peak) AS peak_auroc_mean, count(*) FILTER (NOT converged) AS n_not_converged
FROM ({tail}) JOIN peak USING (study, cell_id)
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


def convergence(con) -> list[dict[str, Any]]:
    """Per (dataset, model, loss, epoch): mean, std and CV of the objective and of
    train_mse across every complete cell (hyperparameters and seeds pooled)."""
    return rows(con, CONVERGENCE_SQL)


def convergence_seeds(con) -> list[dict[str, Any]]:
    """Per (dataset, model, loss, epoch): std and CV across the seeds of one configuration,
    averaged over configurations with at least two complete seeds."""
    return rows(con, CONVERGENCE_SEEDS_SQL)


def oscillation(con, last: int = LAST_K) -> list[dict[str, Any]]:
    """Per (dataset, model, loss): the SD of ln(train_mse) around its linear trend over
    each trial's last ``last`` epochs (mean, median), the mean trend (log change across
    those epochs) and how many trials have not converged."""
    return rows(con, OSCILLATION_SQL.format(tail=tail_sql(last)))


def auroc_stability(con, last: int = LAST_K) -> list[dict[str, Any]]:
    """Per (dataset, model, loss): the SD of test_auroc around its trend over each trial's
    last epochs, the trend, and the drop from the peak epoch to the last (IAEAD fig. 3)."""
    return rows(con, AUROC_STABILITY_SQL.format(tail=tail_sql(last)))


def divergence(con) -> list[dict[str, Any]]:
    """Per (dataset, model, loss): trial counts by status and the diverged share (Wilson CI)."""
    out = rows(con, DIVERGENCE_SQL)
    for r in out:
        r["diverged_share"] = r["n_diverged"] / r["n_cells"]
        r["share_ci_low"], r["share_ci_high"] = wilson_ci(r["n_diverged"], r["n_cells"])
    return out


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


def auroc_epoch_deltas(con, baseline: str, axis: str = "loss") -> list[dict[str, Any]]:
    """Per (dataset, compared value, epoch): the mean and SD over pairs of trials (equal but
    for the axis) of test_auroc other - baseline at that epoch."""
    key = ", ".join(pairing_key(axis))
    return rows(con, f"""
        WITH s AS (SELECT *, {label_column(axis)} AS value FROM trials
                   WHERE status = 'complete'),
        p AS (SELECT o.study, o.cell_id AS oc, b.cell_id AS bc, o.dataset, o.value
              FROM s o JOIN s b USING ({key}) WHERE b.value = ? AND o.value <> ?)
        SELECT p.dataset, p.value, eo.epoch, count(*) AS n_pairs,
               avg(eo.test_auroc - eb.test_auroc) AS delta_mean,
               stddev_samp(eo.test_auroc - eb.test_auroc) AS delta_sd
        FROM p JOIN epochs eo ON eo.study = p.study AND eo.cell_id = p.oc
             JOIN epochs eb ON eb.study = p.study AND eb.cell_id = p.bc AND eb.epoch = eo.epoch
        WHERE eo.test_auroc IS NOT NULL AND eb.test_auroc IS NOT NULL
        GROUP BY ALL ORDER BY ALL""", [baseline, baseline])
