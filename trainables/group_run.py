"""run_group: the cells of one trial, trained as one stack where they can be, else in turn.

Grouping many small cells into one trial pays the trial's start-up (process, imports,
data load) once; stacking them (trainables.stacked) also pays each step's overhead once.
Never raises: failures become 'failed' final records, as in run_cell.
"""

from __future__ import annotations

import platform
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from study.cell import Cell
from study.provenance import versions
from trainables.run import now, run_cell
from trainables.stacked import stack_key, train_stack

Record = tuple[str, dict[str, Any]]


def can_stack(cells: Sequence[Cell]) -> bool:
    """More than one cell, all with one stack key, scored on the common yardstick."""
    keys = {stack_key(c) for c in cells}
    return (
        len(cells) > 1 and None not in keys and len(keys) == 1
        and all(c.score == "recon_mse" for c in cells)
    )


def run_group(
    cells: Sequence[Cell], data_root: str, device: str = "auto", save_weights: bool = False
) -> Iterator[Record]:
    """Yields (cell_id, record) for every cell: its epoch records, then its final record.

    Args:
        cells: the trial's cells.
        data_root: where datasets live.
        device: 'auto', 'cpu' or 'cuda'.
        save_weights: keep each model's weights (stacks are unstacked for that, so cells
            then train one after another).
    """
    if can_stack(cells) and not save_weights:
        yield from run_stack(cells, data_root, device)
        return
    for cell in cells:
        for record in run_cell(cell, data_root, device, save_weights):
            yield cell.cell_id, record


def run_stack(cells: Sequence[Cell], data_root: str, device: str) -> Iterator[Record]:
    """train_stack with provenance on every final record; an exception fails every cell
    that has no final record yet (with the error), and the others stand."""
    provenance = {"host": platform.node(), "started_at": now(), **versions()}
    finished: set[str] = set()
    epochs_run: dict[str, int] = {}
    try:
        for cell_id, record in train_stack(cells, data_root, device):
            if record["kind"] == "final":
                finished.add(cell_id)
                record = record | provenance | {"finished_at": now()}
            else:
                epochs_run[cell_id] = record["epoch"]
            yield cell_id, record
    except Exception as err:  # noqa: BLE001 - every failure becomes a stored row
        tail = "".join(traceback.format_exception(err)[-3:])
        error = f"{type(err).__name__}: {err}\n{tail}"[:4000]
        for cell in cells:
            if cell.cell_id not in finished:
                yield cell.cell_id, {
                    "kind": "final", "status": "failed", "error": error,
                    "epochs_run": epochs_run.get(cell.cell_id, 0), **provenance,
                    "finished_at": now(),
                }
