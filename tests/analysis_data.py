"""Parquet fixtures with known answers for the analysis tests, written through the real
results store (study.store.ResultsStore), so the analysis reads exactly what a study writes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from study.cell import Cell
from study.store import ResultsStore

EPOCHS = 6


def curve(cell: Cell, start: float, rng: np.random.Generator) -> list[dict[str, Any]]:
    """A decreasing loss curve with seeded noise, and a test AUROC per epoch."""
    out = []
    for epoch in range(1, EPOCHS + 1):
        mse = start / epoch + float(rng.uniform(0, 0.01))
        out.append({"epoch": epoch, "train_loss": mse * (3 if cell.loss == "lmse" else 1),
                    "train_mse": mse, "test_auroc": 0.6 + 0.05 * epoch * float(rng.uniform(0.5, 1)),
                    "test_mse_normal": mse, "test_mse_anomalous": 2 * mse, "grad_norm": 1.0,
                    "wall_s": 0.1 * epoch})
    return out


def write_study(
    root: Path, study: str, cells: Iterable[Cell],
    auroc: Callable[[Cell], float], status: Callable[[Cell], str] = lambda c: "complete",
    seed: int = 0, make_curve: Callable[..., list[dict[str, Any]]] | None = None,
) -> list[Cell]:
    """Stores one trial per cell: AUROC (and AUPR-in/out = AUROC -/+ 0.05, their trapezoidal
    forms 0.01 lower) from ``auroc``,
    epochs from ``make_curve`` (default ``curve``); returns the cells."""
    store = ResultsStore(str(root), study)
    store.prepare()
    rng = np.random.default_rng(seed)
    written = []
    for cell in cells:
        epochs = (make_curve or curve)(cell, 0.2 + 0.01 * cell.normal_class, rng)
        state = status(cell)
        value = auroc(cell) if state == "complete" else None
        final = {
            "status": state, "auroc": value,
            "aupr_in": None if value is None else value - 0.05,
            "aupr_out": None if value is None else value + 0.05,
            # the trapezoidal AUPR (IAEAD's tables): 0.01 below average precision
            "aupr_in_trapz": None if value is None else value - 0.06,
            "aupr_out_trapz": None if value is None else value + 0.04,
            "final_train_loss": epochs[-1]["train_loss"] if value is not None else None,
            "final_train_mse": epochs[-1]["train_mse"] if value is not None else None,
            "epochs_run": EPOCHS, "error": "" if state == "complete" else "loss became nan",
            "scores": [0.1, 0.9], "labels": [0, 1], "adstudy_version": "0.1.0",
        }
        store.write_cell(cell, final, epochs if state == "complete" else epochs[:2])
        written.append(cell)
    return written


def grid(study: str, losses: Iterable[str] = ("mse", "lmse"), classes: int = 10,
         seeds: int = 2, **fixed: Any) -> list[Cell]:
    """Cells: every loss x normal class x seed (other fields fixed)."""
    return [Cell(study=study, loss=loss, normal_class=k, seed=s, epochs=EPOCHS, **fixed)
            for loss in losses for k in range(classes) for s in range(seeds)]


def base_auroc(cell: Cell) -> float:
    """A distinct AUROC per (class, seed, lr) for the baseline."""
    return round(0.6 + 0.03 * cell.normal_class + 0.004 * cell.seed + 0.1 * cell.lr, 6)


def plus(delta: float) -> Callable[[Cell], float]:
    """mse at base_auroc, every other loss ``delta`` higher."""
    return lambda c: base_auroc(c) + (0.0 if c.loss == "mse" else delta)
