"""run_cell: train_cell with failures turned into data and provenance attached."""

from __future__ import annotations

import datetime
import platform
import traceback
from collections.abc import Iterator
from typing import Any

from study.cell import Cell
from study.provenance import versions


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def run_cell(
    cell: Cell, data_root: str = "~/.cache/adstudy", device: str = "auto",
    save_weights: bool = False,
) -> Iterator[dict[str, Any]]:
    """Like train_cell, but never raises: an exception ends the trial with a final record
    of status 'failed' and the error. The final record also carries host, versions and
    start/finish times (and, with ``save_weights``, the trained weights as bytes)."""
    from trainables.faults import injected_fault
    from trainables.train import train_cell

    injected_fault(cell.cell_id)  # a test hook: a no-op unless ADSTUDY_FAULT_INJECT names it
    started_at = now()
    provenance = {"host": platform.node(), "started_at": started_at, **versions()}
    epochs_run = 0
    try:
        for record in train_cell(cell, data_root, device, save_weights):
            if record["kind"] == "epoch":
                epochs_run = record["epoch"]
                yield record
            else:
                yield record | provenance | {"finished_at": now()}
    except Exception as err:  # noqa: BLE001 - every failure becomes a stored row
        tail = "".join(traceback.format_exception(err)[-3:])
        yield {
            "kind": "final",
            "status": "failed",
            "error": f"{type(err).__name__}: {err}\n{tail}"[:4000],
            "epochs_run": epochs_run,
            **provenance,
            "finished_at": now(),
        }
