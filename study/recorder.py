"""The driver's record keeper: each finished cell of a running study goes to the store.

The runner (study.runner) forwards Tune's callback events here as plain data (a
TrialInfo and the trial's reported records); nothing here imports ray. The store, not
Ray's experiment state, is the record of a study.

A trial whose process dies (a crash, a lost node) is retried by Tune from its start
(``recover`` drops its cells' partial epochs; cells already written stay written and are
not written twice); when retries run out, its unwritten cells are stored as failed with
the cause the runner found (a Failure: the exception, or how the process or its node
died, with the node and the path of the process's log there). A tuned trial its group's
ASHA stopped is stored as 'pruned' with the epochs it ran. The row's ``retries`` counts
the attempts that died. Progress (study.progress) hears of every trial that starts,
ends, is retried, and of every cell stored. A cell that cannot
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
class Failure:
    """Why an attempt of a trial failed, as the runner found it."""

    error: str  # 'ExceptionType: message' (a process or node death says how it died)
    node_id: str | None = None  # the Ray node the attempt ran on
    log_path: str | None = None  # its process's log file, on that node
    where: str = ""  # 'pid 123 on 10.0.0.5'

    def text(self) -> str:
        return f"{self.error} ({self.where})" if self.where else self.error


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

    def planned(self, sizes: list[int], slots: int) -> None:
        """The trials to come (cells each) and the slots they share."""
        self.progress.plan(sizes, slots)

    def start(self, trial: TrialInfo) -> None:
        self.progress.trial_started(trial.trial_id, len(trial.cells))

    def ended(self, trial: TrialInfo) -> None:
        self.progress.trial_ended(trial.trial_id)

    def tick(self) -> None:
        self.progress.tick()

    def result(self, trial: TrialInfo, result: dict[str, Any]) -> None:
        """A record the trial reported: an epoch of a one-cell trial, or a final one."""
        kind = result.get("kind")
        if kind == "epoch":
            self.epochs[result["cell_id"]].append(epoch_row(result))
        elif kind == "final":
            carried = result.get("epochs")
            epochs = [epoch_row(e) for e in carried] if carried is not None else None
            self._write(trial, trial.cells[result["cell_id"]], result, epochs)

    def recover(self, trial: TrialInfo, failure: Failure) -> None:
        """The trial's process died and Tune runs it again: its partial epochs go."""
        for cell_id in trial.cells:
            self.epochs.pop(cell_id, None)
        left = [c for c in trial.cells.values() if c.cell_id not in self.written]
        what = self.progress.label(left[0]) if left else trial.trial_id
        more = f" and {len(left) - 1} more cells" if len(left) > 1 else ""
        self.progress.retry(f"{what}{more}: attempt {trial.num_failures} failed: "
                            f"{failure.text()}")

    def error(self, trial: TrialInfo, failure: Failure) -> None:
        """The trial ran out of retries: its unwritten cells are stored as failed."""
        final = {"status": "failed",
                 "error": f"trial failed after {trial.num_failures} attempt(s): "
                          f"{failure.text()}"[:4000],
                 "node_id": failure.node_id, "log_path": failure.log_path}
        for cell in trial.cells.values():
            self._write(trial, cell, final, None)
        self.progress.trial_ended(trial.trial_id, measured=False)

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
        self.progress.record(final.get("status", "failed"), final, cell, trial.trial_id)


# Where Ray's messages turn from what happened to advice on what it might mean.
RAY_ADVICE = (" Some common causes include", " If the process was killed", " To troubleshoot")


def short_cause(kind: str, message: str) -> str:
    """'Kind: message' on one line, Ray's general advice cut (and an actor death's
    preamble: the sentence that says how it died is kept)."""
    text = " ".join(str(message).split())
    if "The actor is dead because" in text:
        text = text[text.index("The actor is dead because"):]
    for marker in RAY_ADVICE:
        text = text.split(marker)[0]
    return f"{kind}: {text.strip()}"[:600]


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
