"""Simulated studies with planted truths, written as Parquet trials in the store's schema.

A study is a grid of classes x configurations (lr x latent_dim) x seeds, one mse and one
lmse trial per cell. lmse's AUROC is mse's plus a planted delta: a class effect (mean
``effect``, SD ``tau`` across classes, or given per class), a class x configuration effect
(SD ``config_sd``) and noise per pair (SD ``noise``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from study.cell import Cell
from study.compaction import add_group
from study.schema import TRIALS
from study.store import ResultsStore, trial_row

CONFIGS = [(lr, latent) for lr in (0.001, 0.003) for latent in (8, 16)]


def deltas(rng: np.random.Generator, classes: int, seeds: int, effect: float | Sequence[float],
           tau: float, config_sd: float, noise: float) -> np.ndarray:
    """Planted paired deltas, shape [classes, configurations, seeds]."""
    per_class = (np.asarray(effect, dtype=float) if np.ndim(effect)
                 else effect + tau * rng.standard_normal(classes))
    config = config_sd * rng.standard_normal((classes, len(CONFIGS), 1))
    pair = noise * rng.standard_normal((classes, len(CONFIGS), seeds))
    return per_class[:, None, None] + config + pair


def template(classes: int, seeds: int) -> list[tuple[Cell, dict]]:
    """(cell, trials row) of a study named 'template', mse and lmse per grid point, in the
    order ``trial_rows`` fills them."""
    out = []
    for k in range(classes):
        for lr, latent in CONFIGS:
            for s in range(seeds):
                for loss in ("mse", "lmse"):
                    cell = Cell(study="template", loss=loss, normal_class=k, lr=lr,
                                latent_dim=latent, seed=s, epochs=6)
                    out.append((cell, trial_row(cell, {"status": "complete"})))
    return out


def trial_rows(study: str, delta: np.ndarray, rng: np.random.Generator,
               cells: list[tuple[Cell, dict]]) -> list[dict]:
    """The template's rows renamed to ``study`` (their own cell ids), with AUROCs: mse's
    drawn, lmse's mse's plus the planted delta."""
    base = (0.85 + 0.1 * rng.random(delta.shape)).ravel()
    auroc = np.stack([base, base + delta.ravel()], axis=1).ravel()
    return [row | {"study": study, "cell_id": dataclasses.replace(cell, study=study).cell_id,
                   "auroc": float(value)}
            for (cell, row), value in zip(cells, auroc, strict=True)]


def write_studies(root: Path, n: int, seed: int, classes: int = 10, seeds: int = 2,
                  **planted) -> list[str]:
    """``n`` simulated studies under ``root``, each one trials part in its folder, stored as
    a compacted study is (study.compaction.add_group: one file, listed in its manifest)."""
    rng = np.random.default_rng(seed)
    cells, names = template(classes, seeds), []
    for i in range(n):
        name = f"sim{i:04d}"
        rows = trial_rows(name, deltas(rng, classes, seeds, **planted), rng, cells)
        add_group(ResultsStore(str(root), name),
                  {"trials": pa.Table.from_pylist(rows, schema=TRIALS)})
        names.append(name)
    return names
