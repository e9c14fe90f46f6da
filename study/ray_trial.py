"""The Ray Tune trial function: the worker-side entry point, the one place a trial touches
Ray (study.runner is the driver side).

It runs a trial's pack of cells with trainables.run.run_cells and reports their records to
Tune; the driver's recorder (study.recorder) writes them. Ray assigns GPUs through
CUDA_VISIBLE_DEVICES; with device 'auto' the trial uses a GPU exactly when Ray gave it one,
and fails with the reason when torch cannot use it (unless run.gpu_fallback is 'cpu'). A
data root on an object store is mirrored to the node first (study.data_mirror). The final
record says where the trial ran (Ray node id, the GPU ids and share Ray reserved), so a
cluster run can be checked from the stored rows.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import ray
from ray import tune

from study.cell import Cell
from study.data_mirror import local_data_root


class GpuUnusableError(RuntimeError):
    """Ray gave the trial a GPU that torch cannot use, and the spec asks for no fallback."""


def trial_device(requested: str, gpu_ids: list[str], fallback: str = "none") -> str:
    """The torch device a trial trains on.

    Args:
        requested: the spec's run.device: 'auto', 'cpu' or 'cuda'.
        gpu_ids: the GPU ids Ray assigned to this trial ([] when none).
        fallback: the spec's run.gpu_fallback: 'none' or 'cpu'.
    Returns:
        'cpu' for 'cpu', or for 'auto' without a GPU from Ray; 'cuda' when the trial
        wants a GPU ('cuda', or 'auto' with a GPU from Ray) and torch can use CUDA; 'cpu'
        when it cannot and ``fallback`` is 'cpu' (the row's ``gpu_ids`` and ``device``
        columns then show both).
    Raises:
        GpuUnusableError: a GPU is wanted, torch cannot use CUDA, and no fallback (as with
            ``ray start --num-gpus 1`` on a machine without CUDA, or a node whose driver
            does not match torch's CUDA build): what Ray gave, what torch sees, the fix.
    """
    if requested == "cpu" or (requested == "auto" and not gpu_ids):
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if fallback == "cpu":
        return "cpu"
    given = f"Ray assigned GPU {','.join(gpu_ids)}" if gpu_ids else "run.device is 'cuda'"
    build = (f"torch {torch.__version__} was built without CUDA" if torch.version.cuda is None
             else f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no usable GPU")
    raise GpuUnusableError(
        f"{given} on host {socket.gethostname()}, but {build} (CUDA_VISIBLE_DEVICES="
        f"{os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')!r}); not training on the CPU "
        "instead. Fix the node (NVIDIA driver, a CUDA build of torch), or set "
        "'run: {gpu_fallback: cpu}' in the study to train such trials on the CPU")


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


def trial_records(config: dict[str, Any], cells: list[Cell],
                  gpu_ids: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(cell_id, record) of run_cells; when this node cannot run the trial (a GPU torch
    cannot use, a data root it cannot mirror), a failed final record per cell with the
    reason instead: failures are data, as a cell's own error is (trainables.run)."""
    # Imported by the first trial, not when Tune creates the actor: an actor is up (and is
    # handed trials) before torch is loaded, so the actors of every node share the work.
    from trainables.run import failed_record, provenance, run_cells

    try:
        device = trial_device(config.get("device", "auto"), gpu_ids,
                              config.get("gpu_fallback", "none"))
        data_root = local_data_root(config.get("data_root", "~/.cache/adstudy"))
    except (GpuUnusableError, OSError, ValueError) as err:  # pyarrow: OSError, ValueError
        for cell in cells:
            yield cell.cell_id, failed_record(err, 0, provenance())
        return
    yield from run_cells(cells, data_root, device, config.get("save_weights", False),
                         config.get("score_every", 1), config.get("curve_test_images", 0))


def run_trial(config: dict[str, Any]) -> None:
    """Tune's function trainable: a pack of cells (study/packing.py), each cell's final
    record reported with where and how it ran. A one-cell trial also reports every epoch
    as it ends (schedulers such as ASHA read them); a pack's epoch records travel inside
    each cell's final record, so Tune handles one result per cell, not per cell-epoch."""
    started = time.perf_counter()
    cells = [Cell.from_dict(c) for c in config["cells"]]
    where = placement()
    gpu_ids = where["gpu_ids"].split(",") if where["gpu_ids"] else []
    stream = len(cells) == 1
    epochs: dict[str, list[dict[str, Any]]] = {}
    for cell_id, record in trial_records(config, cells, gpu_ids):
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
