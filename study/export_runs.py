"""A study's stored cells as the runs of a tracker (study.export, study.export_writers).

One CellRun per stored cell: its hyperparameters (every cell field; a named field's
parameters in full, study.param_columns), its per-epoch curves (the epochs table) and its
final metrics (the trials row). Reads the store through study.store (no DuckDB, no torch).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from datetime import datetime
from typing import Any

from study.cell import CELL_FIELDS, NAMED_FIELDS, Cell
from study.errors import SpecError
from study.param_columns import flat
from study.progress import cell_label
from study.store import ResultsStore

# Per-epoch columns exported as curves, and the trials row's final figures.
EPOCH_METRICS = ("train_loss", "train_mse", "test_auroc", "test_mse_normal",
                 "test_mse_anomalous", "grad_norm", "val_recon_mse", "val_auroc", "wall_s")
FINAL_METRICS = ("auroc", "aupr_in", "aupr_out", "aupr_in_trapz", "aupr_out_trapz",
                 "final_train_loss", "final_train_mse", "val_recon_mse", "val_auroc",
                 "epochs_run", "wall_s", "train_samples_per_s")
TAGS = ("status", "cell_id", "group_id", "group_trial", "loss_label", "model_label",
        "device", "host", "error", "adstudy_version", "git_sha")


@dataclasses.dataclass
class CellRun:
    """One stored cell as a tracker's run."""

    study: str
    cell_id: str
    label: str  # the cell by its values on the study's axes: 'loss=mse seed=0'
    params: dict[str, Any]  # scalar hyperparameters
    tags: dict[str, str]
    final: dict[str, float]  # the trials row's finite metrics
    epochs: list[dict[str, Any]]  # epoch -> the finite per-epoch metrics
    started_ms: int | None = None
    finished_ms: int | None = None

    @property
    def status(self) -> str:
        return self.tags.get("status", "")


def cell_runs(store: ResultsStore) -> list[CellRun]:
    """Every stored cell of the study as a CellRun, by cell id.

    Raises:
        SpecError: when the study stores no trials.
    """
    trials = store.read_trials().to_pylist()
    if not trials:
        raise SpecError(f"study {store.study!r} has no stored trials in {store.shown}")
    curves: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in store.read_table("epochs").to_pylist():
        curves[row["cell_id"]].append(row)
    axes = study_axes(store)
    return [cell_run(row, sorted(curves[row["cell_id"]], key=lambda e: e["epoch"]), axes)
            for row in sorted(trials, key=lambda r: r["cell_id"])]


def study_axes(store: ResultsStore) -> list[str]:
    """The study's axes (compare, then vary) from its stored spec; [] when unreadable."""
    from study.spec import parse_spec

    record = store.read_study_json() or {}
    try:
        return list(parse_spec(record.get("spec_yaml") or "").axes)
    except (SpecError, ValueError, TypeError, AttributeError):
        return []


def cell_run(row: dict[str, Any], epochs: list[dict[str, Any]], axes: list[str]) -> CellRun:
    """One trials row and its epochs as a CellRun."""
    cell = Cell.from_dict({k: row[k] for k in CELL_FIELDS if row.get(k) is not None})
    label = cell_label(cell, axes) if axes else cell.label("loss")
    if row.get("group_id"):
        label += f" trial={row.get('group_trial')}"
    params: dict[str, Any] = {}
    for field in CELL_FIELDS:
        if field == "study" or field.endswith("_params"):
            continue
        if field in NAMED_FIELDS:
            params.update(flat(field, getattr(cell, field), getattr(cell, f"{field}_params")))
        else:
            params[field] = getattr(cell, field)
    tags = {key: str(row[key]) for key in TAGS if row.get(key) is not None}
    return CellRun(
        study=cell.study, cell_id=row["cell_id"], label=label, params=params, tags=tags,
        final={k: float(row[k]) for k in FINAL_METRICS if finite(row.get(k))},
        epochs=[{"epoch": int(e["epoch"]),
                 **{k: float(e[k]) for k in EPOCH_METRICS if finite(e.get(k))}}
                for e in epochs],
        started_ms=millis(row.get("started_at")), finished_ms=millis(row.get("finished_at")),
    )


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def millis(text: str | None) -> int | None:
    """An ISO time as milliseconds since the epoch; None when absent or unreadable."""
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000) if text else None
    except ValueError:
        return None
