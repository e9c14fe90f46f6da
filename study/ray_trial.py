"""The Ray Tune trial function: the worker-side entry point, the one place a trial touches
Ray (study.runner is the driver side).

It runs a trial's pack of cells with trainables.run.run_cells and reports their records to
Tune; the driver's recorder (study.recorder) writes them. Ray assigns GPUs through
CUDA_VISIBLE_DEVICES; with device 'auto' the trial uses a GPU exactly when Ray gave it one
and CUDA can use it. The final record says where the trial ran (Ray node id, the GPU ids
and share Ray reserved), so a cluster run can be checked from the stored rows.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import ray
from ray import tune

from study.cell import Cell


def trial_device(requested: str, gpu_ids: list[str]) -> str:
    """The torch device a trial trains on.

    Args:
        requested: the spec's run.device: 'auto', 'cpu' or 'cuda'.
        gpu_ids: the GPU ids Ray assigned to this trial ([] when none).
    Returns:
        ``requested`` unless it is 'auto'; then 'cuda' when Ray assigned a GPU and torch
        can use CUDA, else 'cpu' (a GPU Ray reserved on a node without a usable CUDA, as
        with ``ray start --num-gpus`` on a CPU machine, falls back to the CPU; the row's
        ``gpu_ids`` and ``device`` columns then show both).
    """
    if requested != "auto":
        return requested
    import torch

    return "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"


def placement() -> dict[str, Any]:
    """Where this trial runs: Ray node id, assigned GPU ids, the GPU share reserved, and
    the log file Ray writes this process's stderr to on that node."""
    context = ray.get_runtime_context()
    gpu_ids = [str(i) for i in context.get_accelerator_ids().get("GPU", [])]
    return {
        "node_id": context.get_node_id(),
        "gpu_ids": ",".join(gpu_ids),
        "gpu_share": float(context.get_assigned_resources().get("GPU", 0.0)),
        "log_path": stderr_file(),
    }


def stderr_file() -> str | None:
    """The file this process's stderr goes to (Ray's worker-*.err), None if not a file."""
    try:
        target = os.readlink("/proc/self/fd/2")
    except OSError:  # not Linux, or no stderr
        return None
    return target if target.startswith("/") and os.path.isfile(target) else None


def reportable(record: dict[str, Any]) -> dict[str, Any]:
    """Numpy arrays as lists, so Tune can carry the record."""
    out = {}
    for key, value in record.items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        out[key] = value
    return out


def run_trial(config: dict[str, Any]) -> None:
    """Tune's function trainable: a pack of cells (study/packing.py), each cell's final
    record reported with where and how it ran. A one-cell trial also reports every epoch
    as it ends (schedulers such as ASHA read them); a pack's epoch records travel inside
    each cell's final record, so Tune handles one result per cell, not per cell-epoch."""
    # Imported by the first trial, not when Tune creates the actor: an actor is up (and is
    # handed trials) before torch is loaded, so the actors of every node share the work.
    from trainables.run import run_cells

    started = time.perf_counter()
    cells = [Cell.from_dict(c) for c in config["cells"]]
    where = placement()
    gpu_ids = where["gpu_ids"].split(",") if where["gpu_ids"] else []
    device = trial_device(config.get("device", "auto"), gpu_ids)
    data_root = config.get("data_root", "~/.cache/adstudy")
    stream = len(cells) == 1
    epochs: dict[str, list[dict[str, Any]]] = {}
    for cell_id, record in run_cells(cells, data_root, device, config.get("save_weights", False)):
        record = record | {"cell_id": cell_id}
        if record["kind"] == "epoch" and not stream:
            epochs.setdefault(cell_id, []).append(record)
            continue
        if record["kind"] == "final":
            record |= where | {"trial_cells": len(cells),
                               "trial_elapsed_s": time.perf_counter() - started}
            if not stream:
                record["epochs"] = epochs.pop(cell_id, [])
        tune.report(reportable(record))
