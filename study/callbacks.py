"""Driver-side Tune callback that writes each finished trial to the results store."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ray import tune

from study.cell import Cell
from study.progress import Progress
from study.schema import EPOCHS
from study.store import ResultsStore

EPOCH_FIELDS = tuple(name for name in EPOCHS.names if name not in ("study", "cell_id"))


class StoreCallback(tune.Callback):
    """Buffers a trial's epoch records and writes the cell when its final record arrives.

    A trial whose process dies is retried by Tune (on_trial_recover drops its partial
    epochs); when retries run out, the cell is stored as failed with Tune's error.
    """

    def __init__(self, store: ResultsStore, progress: Progress):
        self.store = store
        self.progress = progress
        self.epochs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.written: set[str] = set()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        kind = result.get("kind")
        if kind == "epoch":
            self.epochs[trial.trial_id].append({k: result.get(k) for k in EPOCH_FIELDS})
        elif kind == "final":
            self._write(trial, result)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        self.epochs.pop(trial.trial_id, None)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        error = f"trial process failed after {trial.num_failures} attempt(s): "
        error += str(getattr(trial, "error_msg", "") or "see the Ray logs")[-3000:]
        self._write(trial, {"status": "failed", "error": error})

    def _write(self, trial, final: dict[str, Any]) -> None:
        if trial.trial_id in self.written:  # a final record came before the process died
            return
        cell = Cell.from_dict(trial.config["cell"])
        self.store.write_cell(cell, final, self.epochs.pop(trial.trial_id, []))
        self.written.add(trial.trial_id)
        self.progress.record(final.get("status", "failed"))
