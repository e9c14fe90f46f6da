"""The Ray Tune trainable: the one place a trial touches Ray.

It runs a cell with trainables.run.run_cell and reports every record to Tune; the driver's
store callback writes them. Ray assigns GPUs through CUDA_VISIBLE_DEVICES; with device
'auto' the trial uses a GPU exactly when Ray gave it one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ray
from ray import tune

from study.cell import Cell


def trial_device(requested: str) -> str:
    if requested != "auto":
        return requested
    return "cuda" if ray.get_gpu_ids() else "cpu"


def reportable(record: dict[str, Any]) -> dict[str, Any]:
    """Numpy arrays as lists and None as NaN-free values, so Tune can carry the record."""
    out = {}
    for key, value in record.items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        out[key] = value
    return out


def run_trial(config: dict[str, Any]) -> None:
    from trainables.run import run_cell

    cell = Cell.from_dict(config["cell"])
    device = trial_device(config.get("device", "auto"))
    for record in run_cell(cell, config.get("data_root", "~/.cache/adstudy"), device):
        tune.report(reportable(record))
