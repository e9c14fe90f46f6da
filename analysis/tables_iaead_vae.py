"""IAEAD Tables 2/3 and the AE-vs-VAE convergence outcomes, from stored trials."""

from __future__ import annotations

from typing import Any

from analysis.stats import wilson_ci
from analysis.tables import (
    PaperTable,
    add_evidence,
    evidence_note,
    mean_pm,
    method_sql,
    not_applicable,
    pivot,
)
from analysis.views import rows

METRIC_NAMES = {"auroc": "AUROC (%)", "aupr_in": "AUPR-in (%)", "aupr_out": "AUPR-out (%)"}
# IAEAD's tables come from its code's trapezoidal AUPR (trainables/metrics.py); rows
# stored before the *_trapz columns existed have none, and show blank there.
AUPR_NOTE = ("AUPR is the trapezoidal area under the precision-recall curve, as IAEAD's "
             "code computes it (columns aupr_*_trapz; blank for rows stored before them).")

# AE-vs-VAE sec. 4 on lines2x2: final MSE levels of the optimum (0) and the suboptimal
# solutions it names (gray pixels: each costs 1/16 of the total), matched within 1/64.
OUTCOME_LEVELS = {"0 (optimum)": 0.0, "1/16": 1 / 16, "1/8": 1 / 8, "3/16": 3 / 16, "1/4": 1 / 4}
OUTCOME_TOLERANCE = 1 / 64


def _per_seed(con, group: str) -> str:
    """SQL: per (group, method, seed) the metrics averaged over the other cells; then
    mean and std across seeds (IAEAD's ± is over repeated runs)."""
    method = method_sql(con)
    per_seed = f"""
        SELECT {group}, {method} AS method, seed, count(*) AS n,
               avg(auroc) AS auroc, avg(aupr_in_trapz) AS aupr_in,
               avg(aupr_out_trapz) AS aupr_out
        FROM trials WHERE status = 'complete' AND auroc IS NOT NULL AND NOT isnan(auroc)
        GROUP BY ALL"""
    stats = ", ".join(f"avg({m}) AS {m}_m, stddev_samp({m}) AS {m}_s" for m in METRIC_NAMES)
    return f"""SELECT {group}, method, {stats}, count(*) AS n_seeds, sum(n) AS n_cells
               FROM ({per_seed}) GROUP BY ALL ORDER BY ALL"""


def iaead_table2(con) -> PaperTable:
    """IAEAD Table 2: AUROC / AUPR-in / AUPR-out (%) per dataset and contamination, mean ±
    std across seeds of the class-averaged value."""
    found = rows(con, _per_seed(con, "dataset, contamination"))
    if not found:
        return not_applicable("iaead_table2", "IAEAD Table 2", "complete trials with metrics")
    long = [
        {"metric": label, "dataset": r["dataset"], "ρ": f"{r['contamination']:.0%}",
         "method": r["method"], "cell": mean_pm(r[f"{m}_m"], r[f"{m}_s"], 100, 2)}
        for m, label in METRIC_NAMES.items() for r in found
    ]
    records = pivot(long, ("metric", "dataset", "ρ"), "method", "cell")
    for r in found:
        r["ρ"] = f"{r['contamination']:.0%}"
    add_evidence(records, ("dataset", "ρ"), found)
    note = evidence_note(sum(r["n_cells"] for r in found), max(r["n_seeds"] for r in found),
                         "± is the std across seeds of the value averaged over classes and "
                         "configurations (blank with one seed). " + AUPR_NOTE)
    return PaperTable("iaead_table2", "IAEAD Table 2: AUROC / AUPR-in / AUPR-out (%)",
                      records, note)


def iaead_table3(con) -> PaperTable:
    """IAEAD Tables 3/4: AUROC (%) per normal class at each contamination, per method."""
    found = rows(con, _per_seed(con, "dataset, contamination, normal_class"))
    if not found:
        return not_applicable("iaead_table3", "IAEAD Table 3", "complete trials with metrics")
    for r in found:
        r["ρ"], r["cell"] = f"{r['contamination']:.0%}", mean_pm(r["auroc_m"], r["auroc_s"], 100, 2)
    records = pivot(found, ("dataset", "ρ", "normal_class"), "method", "cell")
    add_evidence(records, ("dataset", "ρ", "normal_class"), found)
    note = evidence_note(sum(r["n_cells"] for r in found), max(r["n_seeds"] for r in found),
                         "± is the std across seeds.")
    return PaperTable("iaead_table3", "IAEAD Table 3: AUROC (%) per class and ρ", records, note)


def outcome(status: str, final_mse: float | None) -> str:
    """The named outcome of one trial: a loss level within the tolerance, 'other' or
    'not complete'."""
    if status != "complete" or final_mse is None:
        return "not complete"
    for name, level in OUTCOME_LEVELS.items():
        if abs(final_mse - level) <= OUTCOME_TOLERANCE:
            return name
    return "other"


def aevae_outcomes(con) -> PaperTable:
    """AE-vs-VAE sec. 4: the share of trials ending at the optimum and at each suboptimal
    loss level, per study, dataset, architecture (model with its widths, and bottleneck)
    and loss: a study's variants (A1 vs A2, Keras vs torch initialisation) stay apart."""
    found = rows(con, """SELECT study, dataset, model_label AS model, latent_dim,
                                loss_label AS loss, status, final_train_mse, seed
                         FROM trials ORDER BY ALL""")
    if not found:
        return not_applicable("aevae_outcomes", "AE-vs-VAE outcomes", "trials")
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in found:
        key = (r["study"], r["dataset"], r["model"], r["latent_dim"], r["loss"])
        groups.setdefault(key, []).append(r)
    records = []
    for (study, dataset, model, latent_dim, loss), members in groups.items():
        names = [outcome(m["status"], m["final_train_mse"]) for m in members]
        n = len(names)
        row = {"study": study, "dataset": dataset, "model": model, "bottleneck": latent_dim,
               "loss": loss, "n cells": n, "n seeds": len({m["seed"] for m in members})}
        for name in [*OUTCOME_LEVELS, "other", "not complete"]:
            k = names.count(name)
            row[name] = f"{k} ({k / n:.0%})"
        low, high = wilson_ci(names.count("0 (optimum)"), n)
        row["optimum 95% CI"] = f"{low:.0%}–{high:.0%}"
        records.append(row)
    note = evidence_note(len(found), len({r["seed"] for r in found}),
                         f"Levels are final train_mse values ± {OUTCOME_TOLERANCE:.4g}; they are "
                         "the paper's for lines2x2 (each gray pixel costs 1/16).",
                         what="cells (any status)")
    return PaperTable("aevae_outcomes", "AE-vs-VAE: where training ends", records, note)
