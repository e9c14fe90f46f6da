"""Test-set noise as a yardstick: the standard error of one trial's AUROC (DeLong), from
the stored scores of a few trials per dataset, shown beside every AUROC effect so a reader
sees whether a delta is larger than the noise of one evaluation on these test images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from analysis.inference import delong_se

PER_DATASET = 40  # trials per study and dataset whose scores are read (chosen by cell id)
CACHE = "trial_se_cache"  # a temp table: the scores are read once per connection


def per_trial(con, per_dataset: int = PER_DATASET) -> list[dict[str, Any]]:
    """The DeLong SE of up to ``per_dataset`` complete trials per (study, dataset): study,
    dataset, cell_id, se (computed once per connection, then kept as a temp table)."""
    cached = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                         [CACHE]).fetchone()[0]
    if not cached:
        con.execute(f"CREATE TEMP TABLE {CACHE} (study VARCHAR, dataset VARCHAR, "
                    "cell_id VARCHAR, se DOUBLE)")
        found = _delong_of_picked(con, per_dataset)
        if found:
            con.executemany(f"INSERT INTO {CACHE} VALUES (?, ?, ?, ?)", found)
    names = ("study", "dataset", "cell_id", "se")
    return [dict(zip(names, r, strict=True))
            for r in con.execute(f"SELECT * FROM {CACHE} ORDER BY ALL").fetchall()]


def _delong_of_picked(con, per_dataset: int) -> list[tuple]:
    picked = f"""
        SELECT study, cell_id, dataset FROM (
            SELECT study, cell_id, CAST(dataset AS VARCHAR) AS dataset, row_number() OVER (
                PARTITION BY study, dataset ORDER BY cell_id) AS pick
            FROM trials WHERE status = 'complete')
        WHERE pick <= {int(per_dataset)}"""
    table = con.execute(f"""
        SELECT p.study, p.dataset, s.cell_id, s.label, s.score
        FROM scores s JOIN ({picked}) p USING (study, cell_id)
        ORDER BY p.study, p.dataset, s.cell_id""").fetchnumpy()
    keys = list(zip(table["study"], table["dataset"], table["cell_id"], strict=True))
    bounds = [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]]
    out = []
    for chunk in np.split(np.arange(len(keys)), bounds) if keys else []:
        se = delong_se(table["label"][chunk], table["score"][chunk])
        if np.isfinite(se):
            out.append((*keys[chunk[0]], float(se)))
    return out


def trial_se(con, studies: Sequence[str] | None = None) -> dict[Any, dict[str, Any]]:
    """Per dataset (of ``studies``, default all): the median, min and max DeLong SE of one
    trial's AUROC over the trials ``per_trial`` picked, and how many there were."""
    per_dataset: dict[Any, list[float]] = {}
    for r in per_trial(con):
        if not studies or r["study"] in studies:
            per_dataset.setdefault(r["dataset"], []).append(r["se"])
    return {dataset: {"se": float(np.median(v)), "se_min": float(min(v)),
                      "se_max": float(max(v)), "n_trials": len(v)}
            for dataset, v in per_dataset.items()}


def yardstick_rows(con) -> list[dict[str, Any]]:
    """The yardstick as table rows (dataset, SE of one trial's AUROC, range, n trials)."""
    return [{"dataset": d, "one-trial AUROC SE (median)": s["se"], "min": s["se_min"],
             "max": s["se_max"], "n trials": s["n_trials"]}
            for d, s in sorted(trial_se(con).items(), key=lambda kv: str(kv[0]))]
