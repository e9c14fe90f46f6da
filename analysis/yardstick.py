"""Test-set noise as a yardstick: the standard error of one trial's AUROC (DeLong), from
the stored scores of a few trials per dataset, shown beside every AUROC effect so a reader
sees whether a delta is larger than the noise of one evaluation on these test images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from analysis.inference import delong_se

PER_DATASET = 40  # trials per dataset whose scores are read (chosen by cell id)


def trial_se(con, studies: Sequence[str] | None = None,
             per_dataset: int = PER_DATASET) -> dict[Any, dict[str, Any]]:
    """Per dataset: the median, min and max DeLong SE of one trial's AUROC over up to
    ``per_dataset`` complete trials with stored scores, and how many there were."""
    where = ""
    if studies:
        where = "AND study IN (" + ", ".join("'" + s.replace("'", "''") + "'"
                                             for s in studies) + ")"
    picked = f"""
        SELECT study, cell_id, dataset FROM (
            SELECT study, cell_id, dataset, row_number() OVER (
                PARTITION BY dataset ORDER BY cell_id, study) AS pick
            FROM trials WHERE status = 'complete' {where})
        WHERE pick <= {int(per_dataset)}"""
    table = con.execute(f"""
        SELECT p.dataset, s.study, s.cell_id, s.label, s.score
        FROM scores s JOIN ({picked}) p USING (study, cell_id)
        ORDER BY p.dataset, s.study, s.cell_id""").fetchnumpy()
    per_trial: dict[Any, list[float]] = {}
    keys = list(zip(table["dataset"], table["study"], table["cell_id"], strict=True))
    bounds = [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]]
    for chunk in np.split(np.arange(len(keys)), bounds) if keys else []:
        se = delong_se(table["label"][chunk], table["score"][chunk])
        if np.isfinite(se):
            per_trial.setdefault(keys[chunk[0]][0], []).append(se)
    return {dataset: {"se": float(np.median(v)), "se_min": float(min(v)),
                      "se_max": float(max(v)), "n_trials": len(v)}
            for dataset, v in per_trial.items()}


def yardstick_rows(con) -> list[dict[str, Any]]:
    """The yardstick as table rows (dataset, SE of one trial's AUROC, range, n trials)."""
    return [{"dataset": d, "one-trial AUROC SE (median)": s["se"], "min": s["se_min"],
             "max": s["se_max"], "n trials": s["n_trials"]}
            for d, s in sorted(trial_se(con).items(), key=lambda kv: str(kv[0]))]

