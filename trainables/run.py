"""Running a trial's cells: failures turned into data, provenance attached. No Ray here.

``run_cells`` is what a trial runs (the Ray entry point, study/ray_trial.py, calls it):
cells that make one stack (trainables.stacking) train together (trainables.train_stack),
else one after another (``run_cell``: trainables.train.train_cell). Grouping many small
cells into one trial pays the trial's start-up (process, imports, data load) once;
stacking them also pays each step's overhead once. Nothing here raises: an exception
ends each unfinished cell with a final record of status 'failed' and the error.
"""

from __future__ import annotations

import platform
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from trainables.cell import Cell
from trainables.faults import injected_fault
from trainables.provenance import now, versions
from trainables.stacking import can_stack, stack_pays_on_cpu
from trainables.train import pick_device, train_cell
from trainables.train_stack import train_stack

Record = tuple[str, dict[str, Any]]


def provenance() -> dict[str, Any]:
    """Where and with what a cell ran: host, start time, code and library versions."""
    return {"host": platform.node(), "started_at": now(), **versions()}


def failed_record(err: Exception, epochs_run: int, where: dict[str, Any]) -> dict[str, Any]:
    """The final record of a cell an exception ended: status 'failed', the error and the
    last lines of its traceback (STYLE 7: a failure is data, never a NaN metric)."""
    tail = "".join(traceback.format_exception(err)[-3:])
    return {"kind": "final", "status": "failed",
            "error": f"{type(err).__name__}: {err}\n{tail}"[:4000],
            "epochs_run": epochs_run, **where, "finished_at": now()}


def run_cells(
    cells: Sequence[Cell], data_root: str, device: str = "auto", save_weights: bool = False,
    score_every: int = 1, curve_images: int = 0,
) -> Iterator[Record]:
    """Yields (cell_id, record) for every cell: its epoch records, then its final record.

    Args:
        cells: the trial's cells.
        data_root: where datasets live.
        device: 'auto', 'cpu' or 'cuda'.
        save_weights: keep each model's weights (stacks are unstacked for that, so cells
            then train one after another). So are stacks of large images on a CPU,
            where stacking does not pay (stack_pays).
        score_every: test figures every k-th epoch and the last only (trainables.train).
        curve_images: test figures of the epochs on a fixed subsample of this many test
            images (0: all; trainables.curves).
    """
    if can_stack(cells) and not save_weights and stack_pays(cells[0], data_root, device):
        yield from run_stack(cells, data_root, device, score_every, curve_images)
        return
    for cell in cells:
        for record in run_cell(cell, data_root, device, save_weights, score_every,
                               curve_images):
            yield cell.cell_id, record


def stack_pays(cell: Cell, data_root: str, device: str) -> bool:
    """Stacks pay on a GPU always, on a CPU for small images (trainables.stacking); when
    the images cannot be looked at here, the stack tries (and fails its cells as data)."""
    try:
        return pick_device(device).type != "cpu" or stack_pays_on_cpu(cell, data_root)
    except Exception:  # noqa: BLE001 - the stack's own run names what is wrong
        return True


def run_cell(
    cell: Cell, data_root: str = "~/.cache/adstudy", device: str = "auto",
    save_weights: bool = False, score_every: int = 1, curve_images: int = 0,
) -> Iterator[dict[str, Any]]:
    """train_cell's records; the final one also carries host, versions and start/finish
    times (and, with ``save_weights``, the trained weights as bytes)."""
    injected_fault(cell.cell_id)  # a test hook: a no-op unless ADSTUDY_FAULT_INJECT names it
    where = provenance()
    epochs_run = 0
    try:
        for record in train_cell(cell, data_root, device, save_weights, score_every,
                                 curve_images):
            if record["kind"] == "epoch":
                epochs_run = record["epoch"]
                yield record
            else:
                yield record | where | {"finished_at": now()}
    except Exception as err:  # noqa: BLE001 - every failure becomes a stored row
        yield failed_record(err, epochs_run, where)


def run_stack(cells: Sequence[Cell], data_root: str, device: str,
              score_every: int = 1, curve_images: int = 0) -> Iterator[Record]:
    """train_stack with provenance on every final record; an exception fails every cell
    that has no final record yet (with the error), and the others stand."""
    where = provenance()
    finished: set[str] = set()
    epochs_run: dict[str, int] = {}
    try:
        for cell_id, record in train_stack(cells, data_root, device, score_every,
                                           curve_images):
            if record["kind"] == "final":
                finished.add(cell_id)
                record = record | where | {"finished_at": now()}
            else:
                epochs_run[cell_id] = record["epoch"]
            yield cell_id, record
    except Exception as err:  # noqa: BLE001 - every failure becomes a stored row
        for cell in cells:
            if cell.cell_id not in finished:
                yield cell.cell_id, failed_record(err, epochs_run.get(cell.cell_id, 0), where)
