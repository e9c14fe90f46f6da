"""LMSE Tables I/II and LAMP Tables 1/2, from the stored trials of the matching presets."""

from __future__ import annotations

import json
from typing import Any

from analysis.bestof import best_of_sql, selection
from analysis.tables import (
    PaperTable,
    add_evidence,
    evidence_note,
    mean_pm,
    method_sql,
    not_applicable,
    pivot,
    span,
)
from analysis.views import rows

COMPLETE = "status = 'complete' AND auroc IS NOT NULL AND NOT isnan(auroc)"

# LAMP's base loss -> the plain loss it amplifies (l1 is registered as both l1 and mae).
LAMP_PLAIN = {"l2": ("mse",), "l1": ("l1", "mae"), "ssim": ("ssim",)}


def lmse_table(con) -> PaperTable:
    """LMSE Tables I/II: AUROC mean ± std across cells per normal class and method, and
    the total over every class."""
    method = method_sql(con)
    stats = ("avg(auroc) AS m, stddev_samp(auroc) AS s, count(*) AS n, "
             "count(DISTINCT seed) AS n_seeds")
    per_class = rows(con, f"""
        SELECT dataset, normal_class, CAST(normal_class AS VARCHAR) AS normal,
               {method} AS method, {stats}
        FROM trials WHERE {COMPLETE} GROUP BY ALL ORDER BY dataset, normal_class, method""")
    total = rows(con, f"""
        SELECT dataset, 'Total' AS normal, {method} AS method, {stats}
        FROM trials WHERE {COMPLETE} GROUP BY ALL ORDER BY ALL""")
    if not per_class:
        return not_applicable("lmse_table", "LMSE Tables I/II", "complete trials with an AUROC")
    for r in per_class + total:
        r["cell"] = mean_pm(r["m"], r["s"])
    records = pivot(per_class + total, ("dataset", "normal"), "method", "cell")
    add_evidence(records, ("dataset", "normal"), per_class + total, cells="n")
    n_cells = sum(r["n"] for r in total)
    note = evidence_note(n_cells, max(r["n_seeds"] for r in total),
                         "± is the std across cells (hyperparameters and seeds), as in the paper.")
    return PaperTable("lmse_table", "LMSE Tables I/II: AUROC per normal class", records, note)


def lamp_table1(con) -> PaperTable:
    """LAMP Table 1: per batch size, the mean over normal classes of each class's best
    configuration (seed-mean AUROC, tuned over every other axis)."""
    best = rows(con, f"""
        SELECT dataset, value AS loss, batch_size, avg(best_mean) AS m, count(*) AS n_classes,
               sum(n_cells) AS n_cells, max(n_seeds) AS n_seeds
        FROM ({best_of_sql("loss", ("dataset", "normal_class", "batch_size"),
                           select=selection(con))})
        GROUP BY ALL ORDER BY dataset, loss, batch_size DESC""")
    if not best:
        return not_applicable("lamp_table1", "LAMP Table 1", "complete trials with an AUROC")
    sizes = [f"bs {b}" for b in sorted({r["batch_size"] for r in best}, reverse=True)]
    for r in best:
        r["cell"], r["bs"] = f"{r['m']:.3f}", f"bs {r['batch_size']}"
    records = pivot(best, ("dataset", "loss"), "bs", "cell", sizes)
    for record in records:
        mine = [r for r in best if (r["dataset"], r["loss"]) == (record["dataset"], record["loss"])]
        record["n classes"] = span(r["n_classes"] for r in mine)
    add_evidence(records, ("dataset", "loss"), best)
    note = evidence_note(sum(r["n_cells"] for r in best), max(r["n_seeds"] for r in best),
                         "Columns are batch sizes; each value is the mean over normal classes of "
                         "the best configuration's seed-mean AUROC. " + _selected(con))
    return PaperTable("lamp_table1", "LAMP Table 1: AUROC by batch size", records, note)


def _selected(con) -> str:
    """How the best configurations were chosen (optimistic when on the test labels)."""
    if selection(con) == "val_auroc":
        return "Best chosen on the validation AUROC; the test AUROC is shown."
    return ("Best chosen on the test AUROC it shows (no validation split): optimistic, "
            "an upper bound of what tuning finds.")


def lamp_pairs(con) -> list[tuple[str, str, str]]:
    """(base, plain label, lamp label) for every LAMP loss whose plain loss is also here."""
    found = rows(con, "SELECT DISTINCT loss, loss_params, loss_label FROM trials")
    plain = {r["loss"]: r["loss_label"] for r in found if r["loss_params"] == "{}"}
    out = []
    for r in found:
        if r["loss"] != "lamp":
            continue
        base = json.loads(r["loss_params"]).get("base", "l2")
        match = next((plain[p] for p in LAMP_PLAIN.get(base, ()) if p in plain), None)
        if match:
            out.append((base, match, r["loss_label"]))
    return sorted(out)


def lamp_table2(con) -> PaperTable:
    """LAMP Table 2: best AUROC per class, optimizer x base loss, plain -> LAMP, with the
    best over all settings and the average row."""
    pairs = lamp_pairs(con)
    if not pairs:
        return not_applicable("lamp_table2", "LAMP Table 2",
                              "a lamp loss and its plain base loss (mse, l1/mae or ssim)")
    best = rows(con, best_of_sql("loss", ("dataset", "normal_class", "optimizer"),
                                 select=selection(con)))
    value = {(r["dataset"], r["normal_class"], r["optimizer"], r["value"]): r for r in best}
    optimizers = sorted({r["optimizer"] for r in best})
    groups = sorted({(r["dataset"], r["normal_class"]) for r in best}, key=str)
    records = [_lamp2_row(value, dataset, cls, optimizers, pairs) for dataset, cls in groups]
    records = [r for r in records if len(r) > 2]
    involved = {label for _, plain, lamp in pairs for label in (plain, lamp)}
    behind = [dict(r, normal=r["normal_class"]) for r in best if r["value"] in involved]
    add_evidence(records, ("dataset", "normal"), behind)
    records += add_evidence(_lamp2_average(value, groups, optimizers, pairs), (), behind)
    note = evidence_note(sum(r["n_cells"] for r in best), max(r["n_seeds"] for r in best),
                         "Each cell: best seed-mean AUROC of the plain loss → of its LAMP form. "
                         + _selected(con))
    return PaperTable("lamp_table2", "LAMP Table 2: best AUROC, plain → LAMP", records, note)


def _lamp2_row(value: dict, dataset: Any, cls: Any, optimizers: list[str],
               pairs: list[tuple[str, str, str]]) -> dict[str, Any]:
    row: dict[str, Any] = {"dataset": dataset, "normal": cls}
    for column, (plain, lamp) in _lamp2_cells(value, dataset, cls, optimizers, pairs).items():
        row[column] = f"{plain:.3f} → {lamp:.3f}"
    return row


def _lamp2_cells(value: dict, dataset: Any, cls: Any, optimizers: list[str],
                 pairs: list[tuple[str, str, str]]) -> dict[str, tuple[float, float]]:
    """column -> (plain best, LAMP best) for one class; "best" is the max over settings."""
    cells = {}
    for opt in optimizers:
        for base, plain, lamp in pairs:
            a, b = value.get((dataset, cls, opt, plain)), value.get((dataset, cls, opt, lamp))
            if a and b:
                cells[f"{opt} {base}"] = (a["best_mean"], b["best_mean"])
    if cells:
        cells["best"] = (max(a for a, _ in cells.values()), max(b for _, b in cells.values()))
    return cells


def _lamp2_average(value: dict, groups: list[tuple], optimizers: list[str],
                   pairs: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    by_column: dict[str, list[tuple[float, float]]] = {}
    for dataset, cls in groups:
        for column, cell in _lamp2_cells(value, dataset, cls, optimizers, pairs).items():
            by_column.setdefault(column, []).append(cell)
    average: dict[str, Any] = {"dataset": "", "normal": "Average"}
    for column, cells in by_column.items():
        plain, lamp = (sum(c[i] for c in cells) / len(cells) for i in (0, 1))
        average[column] = f"{plain:.3f} → {lamp:.3f} (n={len(cells)})"
    return [average] if by_column else []
