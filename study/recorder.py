"""The driver's record keeper: each finished cell of a running study goes to the store.

The runner (study.runner) forwards Tune's callback events here as plain data (a
TrialInfo and the trial's reported records); nothing here imports ray. The store, not
Ray's experiment state, is the record of a study.

A trial whose process dies (a crash, a lost node) is retried by Tune from its start
(``recover`` drops its cells' partial epochs; cells already written stay written and are
not written twice); when retries run out, its unwritten cells are stored as failed with
Tune's error. A tuned trial its group's ASHA stopped is stored as 'pruned' with the
epochs it ran. The row's ``retries`` counts the attempts that died. A cell that cannot
be written (OSError: a full disk, a lost mount) stops the study: the store keeps no part
of it, ``failure`` holds the error and the runner raises it.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

from study.cell import Cell
from study.errors import StoreError
from study.progress import Progress
from study.schema import EPOCHS
from study.store import ResultsStore
from trainables.provenance import now, versions

EPOCH_FIELDS = tuple(name for name in EPOCHS.names if name not in ("study", "cell_id"))


@dataclasses.dataclass(frozen=True)
class TrialInfo:
    """What the record keeper needs of a Tune trial."""

    trial_id: str
    cells: dict[str, Cell]  # the trial's cells by id (a trial runs a pack of cells)
    tags: dict[str, Any]  # columns every row of the trial carries (a tuned trial's group)
    num_failures: int  # attempts lost to a dead process or node

    @classmethod
    def of(cls, trial_id: str, config: dict[str, Any], num_failures: int) -> TrialInfo:
        cells = [Cell.from_dict(c) for c in config["cells"]]
        return cls(trial_id, {c.cell_id: c for c in cells}, dict(config.get("tags", {})),
                   int(num_failures))


class Recorder:
    """Writes each cell when its final record arrives (epochs buffered per cell, or
    carried in the final record by a pack trial); see the module doc."""

    def __init__(self, store: ResultsStore, progress: Progress):
        self.store = store
        self.progress = progress
        self.epochs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.written: set[str] = set()
        self.failure: StoreError | None = None  # the write that stopped the study

    def result(self, trial: TrialInfo, result: dict[str, Any]) -> None:
        """A record the trial reported: an epoch of a one-cell trial, or a final one."""
        kind = result.get("kind")
        if kind == "epoch":
            self.epochs[result["cell_id"]].append(epoch_row(result))
        elif kind == "final":
            carried = result.get("epochs")
            epochs = [epoch_row(e) for e in carried] if carried is not None else None
            self._write(trial, trial.cells[result["cell_id"]], result, epochs)

    def recover(self, trial: TrialInfo) -> None:
        """The trial's process died and Tune runs it again: its partial epochs go."""
        for cell_id in trial.cells:
            self.epochs.pop(cell_id, None)

    def error(self, trial: TrialInfo, message: str) -> None:
        """The trial ran out of retries: its unwritten cells are stored as failed."""
        error = f"trial process failed after {trial.num_failures} attempt(s): "
        error += str(message or "see the Ray logs")[-3000:]
        for cell in trial.cells.values():
            self._write(trial, cell, {"status": "failed", "error": error}, None)

    def stopped(self, trial: TrialInfo) -> None:
        """The trial's group's ASHA stopped it: its cells are stored as pruned."""
        for cell in trial.cells.values():
            if cell.cell_id not in self.written:
                self._write(trial, cell, pruned_record(self.epochs.get(cell.cell_id, [])), None)

    def _write(self, trial: TrialInfo, cell: Cell, final: dict[str, Any], epochs) -> None:
        if cell.cell_id in self.written:  # written before its process died, or a retry's copy
            return
        # Attempts lost to a dead process or node: restarts for a finished trial; for a
        # trial out of retries, every attempt (max_failures + 1).
        final = {**final, **trial.tags, "retries": trial.num_failures,
                 "trial_id": trial.trial_id}
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


def pruned_record(epochs: list[dict[str, Any]]) -> dict[str, Any]:
    """The final record of a trial stopped early: its last epoch's figures, no test metrics."""
    last = epochs[-1] if epochs else {}
    return {
        "status": "pruned",
        "error": f"stopped early by ASHA after epoch {len(epochs)}",
        "epochs_run": len(epochs),
        "final_train_loss": last.get("train_loss"),
        "final_train_mse": last.get("train_mse"),
        "val_recon_mse": last.get("val_recon_mse"),
        "val_auroc": last.get("val_auroc"),
        "finished_at": now(),
        **versions(),
    }
