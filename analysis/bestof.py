"""Best-of tuning (LAMP Table 2): each loss at its best configuration, per group.

A configuration is a cell without its seed; its score is the mean over its seeds. Best-of
picks, per group (e.g. dataset x normal class) and per compared value, the configuration
with the highest mean, over every field not in the group: the tuned axes. It selects on
the validation AUROC where every trial holds one (val_fraction > 0); otherwise on the test
AUROC it then reports, which is optimistic, and every table says so (``selected_on``).
Unlike the paired comparison, the two sides may sit at different hyperparameters, so a
best-of difference mixes the loss's effect with the luck of the maximum over the grid:
it is a description, never a claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from analysis.deltas import pair_rows, paired_deltas, summarise
from analysis.views import check_columns, label_column, pairing_key, rows

BY = ("dataset", "normal_class")
# Fields that define the task or the method rather than a tuned knob: best-of is taken
# within each of their values wherever they vary (e.g. per model in an AE-vs-VAE study).
SCIENCE = ("model", "model_params", "protocol", "contamination", "score")

# The tuned fields shown for a best configuration (those a study usually varies).
SHOWN = "'lr=' || lr || ' latent=' || latent_dim || ' bs=' || batch_size || ' ' || optimizer"


OPTIMISTIC = "auroc (test labels: optimistic)"


def selection(con) -> str:
    """The column best-of selects on: val_auroc where every complete trial with an AUROC
    has one, else auroc (the test labels it reports: optimistic)."""
    found = rows(con, "SELECT count(*) AS n, count(val_auroc) AS val FROM trials "
                 "WHERE status = 'complete' AND auroc IS NOT NULL")[0]
    return "val_auroc" if found["n"] and found["val"] == found["n"] else "auroc"


def best_of_sql(axis: str = "loss", by: Sequence[str] = BY, metric: str = "auroc",
                select: str = "auroc") -> str:
    """SQL: per (by..., value) the configuration with the best seed-mean ``select`` and its
    seed-mean ``metric``.

    Columns: the ``by`` columns, value, best_mean, best_trial (the highest single trial's
    metric), best_config, selected_on, n_configs, n_cells, n_seeds.
    """
    check_columns(by)
    config = ", ".join(pairing_key("seed"))
    group = ", ".join(by)
    shown = "'val_auroc'" if select == "val_auroc" else f"'{OPTIMISTIC}'"
    return f"""
    WITH cfg AS (
        SELECT {config}, {label_column(axis)} AS value, {SHOWN} AS shown,
               avg({metric}) AS mean_metric, max({metric}) AS max_metric,
               avg({select}) AS mean_select, count(*) AS n_seeds
        FROM trials
        WHERE status = 'complete' AND {metric} IS NOT NULL AND NOT isnan({metric})
              AND {select} IS NOT NULL AND NOT isnan({select})
        GROUP BY ALL)
    SELECT {group}, value, arg_max(mean_metric, mean_select) AS best_mean,
           max(max_metric) AS best_trial, arg_max(shown, mean_select) AS best_config,
           {shown} AS selected_on, count(*) AS n_configs,
           sum(n_seeds) AS n_cells, max(n_seeds) AS n_seeds
    FROM cfg GROUP BY {group}, value ORDER BY ALL
    """


def groups(con, axis: str = "loss", by: Sequence[str] | None = None) -> list[str]:
    """``by`` if given, else BY plus every SCIENCE field (but the compared axis) that varies."""
    if by:
        return list(by)
    skip = {axis, f"{axis}_params"}
    varying = [c for c in SCIENCE if c not in skip and
               rows(con, f"SELECT count(DISTINCT {c}) AS n FROM trials")[0]["n"] > 1]
    return [*BY, *varying]


def best_of(con, axis: str = "loss", by: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The best-of table: see ``best_of_sql``; ``by`` defaults to ``groups(con, axis)``."""
    return rows(con, best_of_sql(axis, groups(con, axis, by), select=selection(con)))


def best_pairs(
    con, baseline: str, axis: str = "loss", by: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Groups paired across values: delta = other's best_mean - baseline's best_mean."""
    by = groups(con, axis, by)
    return pair_rows(
        con, best_of_sql(axis, by, select=selection(con)), list(by), "best_mean", baseline,
        extra=by, both=("n_seeds", "n_cells"),
    )


def best_vs_paired(
    con, baseline: str, axis: str = "loss", by: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Per (dataset, value): the best-of delta beside the paired delta, and how often the
    two disagree on the winner of a group. Every count counts groups (classes), not pairs.

    Returns:
        Rows: dataset, value, selected_on, n_groups, best_of_mean_delta,
        groups_best_of_higher (groups whose best-of delta is > 0), paired_mean_delta,
        groups_paired_higher (groups whose mean paired delta is > 0), disagreements
        (groups where the two differ), n_pairs (trial pairs behind the paired deltas).
    """
    by, best, select = groups(con, axis, by), {}, selection(con)
    for pair in best_pairs(con, baseline, axis, by):
        best[(pair["value"], *(pair[c] for c in by))] = pair["delta"]
    paired: dict[tuple, list[float]] = {}
    for pair in paired_deltas(con, baseline, axis, by=[c for c in by if c != "dataset"]):
        group = (pair["value"], *(pair[c] for c in by))
        paired.setdefault(group, []).append(pair["delta"])
    out: dict[tuple, dict[str, Any]] = {}
    for group, delta in sorted(best.items(), key=lambda kv: tuple(map(str, kv[0]))):
        value, dataset = group[0], dict(zip(by, group[1:], strict=True)).get("dataset")
        if group not in paired:  # no equal-hyperparameter pair in this group
            continue
        row = out.setdefault((dataset, value), _empty(dataset, value, select))
        mean_paired = sum(paired[group]) / len(paired[group])
        row["n_groups"] += 1
        row["best_of_sum"] += delta
        row["best_of_wins"] += delta > 0
        row["paired_sum"] += mean_paired
        row["paired_wins"] += mean_paired > 0
        row["disagreements"] += (delta > 0) != (mean_paired > 0)
        row["n_pairs"] += len(paired[group])
    return [_finish(r) for r in out.values()]


def _empty(dataset: Any, value: str, select: str) -> dict[str, Any]:
    return {"dataset": dataset, "value": value,
            "selected_on": "val_auroc" if select == "val_auroc" else OPTIMISTIC,
            "n_groups": 0, "best_of_sum": 0.0,
            "best_of_wins": 0, "paired_sum": 0.0, "paired_wins": 0, "disagreements": 0,
            "n_pairs": 0}


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    n = row["n_groups"]
    return {
        "dataset": row["dataset"], "value": row["value"], "selected_on": row["selected_on"],
        "n_groups": n, "best_of_mean_delta": row.pop("best_of_sum") / n,
        "groups_best_of_higher": row["best_of_wins"],
        "paired_mean_delta": row.pop("paired_sum") / n,
        "groups_paired_higher": row["paired_wins"],
        "disagreements": row["disagreements"], "n_pairs": row["n_pairs"],
    }


def best_summary(
    con, baseline: str, axis: str = "loss", by: Sequence[str] | None = None
) -> list[dict]:
    """The best-of deltas summarised per value (and dataset): t interval over the groups."""
    by = groups(con, axis, by)
    return summarise(best_pairs(con, baseline, axis, by), [c for c in by if c == "dataset"])
