"""Submitting a tuned study (``search: optuna``): plan from the store, then one Tuner.

Each trial runs one cell (a one-cell trial streams its epochs, which ASHA reads). The
store is the record: a study whose driver died is finished by submitting it again; each
group continues its search from its stored trials and runs only what is left of its
n_trials, so no group ever exceeds its budget.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from study.callbacks import StoreCallback, cells_of
from study.progress import Progress
from study.provenance import versions
from study.spec import StudySpec
from study.store import ResultsStore
from study.submit import cluster_address, fit_on_ray, runs_here, study_record, trial_dirname
from study.tuning import TunedPlan, plan_tuned


class TunedStoreCallback(StoreCallback):
    """StoreCallback for tuned trials: every row carries its trial's group tags, and a
    trial its group's ASHA stopped is stored as 'pruned' with the epochs it ran."""

    def __init__(self, store: ResultsStore, progress: Progress, scheduler=None):
        super().__init__(store, progress)
        self.scheduler = scheduler  # a study.tune_search.GroupScheduler, or None

    def _write(self, trial, cell, final: dict[str, Any], epochs) -> None:
        super()._write(trial, cell, {**final, **trial.config.get("tags", {})}, epochs)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        if self.scheduler is None or trial.trial_id not in self.scheduler.stopped:
            return  # finished normally (already written), or stopped by an interrupt
        for cell in cells_of(trial).values():
            if cell.cell_id not in self.written:
                self._write(trial, cell, pruned_record(self.epochs.get(cell.cell_id, [])), None)


def pruned_record(epochs: list[dict[str, Any]]) -> dict[str, Any]:
    """The final record of a trial stopped early: its last epoch's figures, no test metrics."""
    from trainables.run import now

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


def submit_tuned(
    spec: StudySpec, results: str = "results", address: str | None = None,
    yes: bool = False, out: TextIO = sys.stdout, filesystem=None,
) -> Progress:
    """Runs what is left of every group's budget of a tuned study.

    Args:
        spec: the validated study (search: optuna).
        results: results root (local path or pyarrow URI).
        address: a Ray cluster to join; None starts an embedded local Ray.
        yes: allow studies of over study.tuning.MAX_GROUPS_WITHOUT_CONFIRM groups.
        out: where progress goes.
        filesystem: a pyarrow filesystem for the store (results is then a path in it).
    Returns:
        The progress counts of the trials run this time, by status.
    Raises:
        SpecError, StoreError: before any trial, for bad input or an unusable store;
            StoreError during the study when a result cannot be written.
    """
    address = cluster_address(address)
    store = ResultsStore(results, spec.study, filesystem)
    work = plan_tuned(spec, store, yes, local=runs_here(address))
    for path, reason in getattr(store, "unreadable", {}).items():
        out.write(f"[{spec.study}] warning: cannot read {path} ({reason}); its trial is "
                  "given back to its group's budget\n")
    out.write(f"[{spec.study}] {work.describe()}\n")
    store.write_study_json(study_record(spec, store))
    progress = Progress(spec.study, work.todo, out)
    if not work.todo:
        out.write(f"[{spec.study}] nothing to run: every group has its {work.n_trials} trials "
                  f"stored in {store.path}\n")
        return progress
    launched = run_tuned(spec, work, store, progress, address)
    if launched < progress.total:  # a group's space held fewer distinct cells than n_trials
        out.write(f"[{spec.study}] {progress.total - launched} trials not run: their groups' "
                  "search spaces hold no further distinct cell\n")
        progress.total = launched
    progress.close()
    out.write(f"[{spec.study}] results in {store.path}\n")
    return progress


def run_tuned(spec: StudySpec, work: TunedPlan, store: ResultsStore, progress: Progress,
              address: str | None) -> int:
    """One Tuner over every group (study.tune_search); returns the trials launched."""
    from study.tune_search import GroupSearch, asha_scheduler

    searcher = GroupSearch(spec, work.groups)
    scheduler = asha_scheduler(spec, max_epochs(spec, work))
    callback = TunedStoreCallback(store, progress, scheduler)
    fit_on_ray(spec, address,
               lambda scratch: tuner(spec, searcher, scheduler, callback, work.todo, scratch),
               callback)
    return searcher.launched


def tuner(spec: StudySpec, searcher, scheduler, callback, budget: int, scratch: str):
    """The Tuner: one-cell trials, suggested by ``searcher``, stopped by ``scheduler``."""
    from ray import tune

    from study.trainable import run_trial

    return tune.Tuner(
        tune.with_resources(run_trial, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}),
        param_space={"data_root": spec.run.data_root, "device": spec.run.device,
                     "save_weights": spec.run.save_weights},
        tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=scheduler, num_samples=budget,
            max_concurrent_trials=spec.resources.max_concurrent or None,
            reuse_actors=spec.run.reuse_actors, trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=spec.study, storage_path=scratch, verbose=0, callbacks=[callback],
            failure_config=tune.FailureConfig(max_failures=spec.run.max_failures),
        ),
    )


def max_epochs(spec: StudySpec, work: TunedPlan) -> int:
    """The most epochs any trial can run (ASHA's max_t is one more: the final record)."""
    tuned = [max(a.values) for a in spec.tune if a.field == "epochs"]
    return max([g.base.epochs for g in work.groups] + tuned)
