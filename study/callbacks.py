"""Driver-side Tune callback that writes each finished cell to the results store."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ray import tune

from study.cell import Cell
from study.errors import StoreError
from study.progress import Progress
from study.schema import EPOCHS
from study.store import ResultsStore

EPOCH_FIELDS = tuple(name for name in EPOCHS.names if name not in ("study", "cell_id"))


class StoreCallback(tune.Callback):
    """Writes each cell when its final record arrives (epochs buffered per cell, or carried
    in the final record by a group trial).

    A trial whose process dies (a crash, a lost node) is retried by Tune from its start
    (on_trial_recover drops its cells' partial epochs; cells already written stay written
    and are not written twice); when retries run out, its unwritten cells are stored as
    failed with Tune's error. The row's ``retries`` counts the attempts that died.
    A cell that cannot be written (OSError: a full disk, a lost mount) stops the study:
    the store keeps no part of it, ``failure`` holds the error and submit raises it.
    """

    def __init__(self, store: ResultsStore, progress: Progress):
        self.store = store
        self.progress = progress
        self.epochs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.written: set[str] = set()
        self.failure: StoreError | None = None  # the write that stopped the study

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        kind = result.get("kind")
        if kind == "epoch":
            self.epochs[result["cell_id"]].append(epoch_row(result))
        elif kind == "final":
            cell = cells_of(trial)[result["cell_id"]]
            carried = result.get("epochs")
            epochs = [epoch_row(e) for e in carried] if carried is not None else None
            self._write(trial, cell, result, epochs)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        for cell_id in cells_of(trial):
            self.epochs.pop(cell_id, None)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        error = f"trial process failed after {trial.num_failures} attempt(s): "
        error += str(getattr(trial, "error_msg", "") or "see the Ray logs")[-3000:]
        for cell in cells_of(trial).values():
            self._write(trial, cell, {"status": "failed", "error": error}, None)

    def _write(self, trial, cell: Cell, final: dict[str, Any], epochs) -> None:
        if cell.cell_id in self.written:  # written before its process died, or a retry's copy
            return
        # Attempts lost to a dead process or node: restarts for a finished trial; for a
        # trial out of retries, every attempt (max_failures + 1).
        final = {**final, "retries": int(trial.num_failures), "trial_id": trial.trial_id}
        if epochs is None:
            epochs = self.epochs.pop(cell.cell_id, [])
        try:
            self.store.write_cell(cell, final, epochs)
        except OSError as err:  # a full disk, a lost mount: stop, keep what is stored
            self.failure = self.failure or StoreError(
                f"cannot store cell {cell.cell_id} in {self.store.path}: {err}. No part of it "
                f"was kept; the {len(self.written)} cells stored before it in this run are. "
                "Free space (or fix the store) and submit again: only the rest runs"
            )
            raise self.failure from err
        self.written.add(cell.cell_id)
        self.progress.record(final.get("status", "failed"))


def epoch_row(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in EPOCH_FIELDS}


def cells_of(trial) -> dict[str, Cell]:
    """The trial's cells by id (from its config; a trial runs a group of cells)."""
    cells = [Cell.from_dict(c) for c in trial.config["cells"]]
    return {cell.cell_id: cell for cell in cells}
