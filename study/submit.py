"""Submitting a study: the one way through the house.

    spec (study.spec) -> the study name to store it under (study.identity)
      -> plan: what to run, decided before Ray starts (study.plan: grid or tuned)
      -> runner: the only driver-side Ray code, one Tuner (study.runner)
           trials: study.ray_trial -> trainables.run.run_cells (no Ray below this)
      -> recorder: each finished cell into the store (study.recorder -> study.store)

The store, not Ray's experiment state, is the record: a study whose driver died is
finished by submitting it again, on any cluster.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, TextIO

from study.identity import choose_study
from study.lease import damage_lines, hold, progress_info
from study.plan import Plan, make_plan
from study.progress import Progress
from study.recorder import Recorder
from study.runner import cluster_address, run, runs_here
from study.spec import StudySpec
from study.store import ResultsStore
from trainables.provenance import now, versions


def submit(
    spec: StudySpec,
    results: str = "results",
    address: str | None = None,
    yes: bool = False,
    out: TextIO = sys.stdout,
    new_version: bool = False,
    filesystem=None,
) -> Progress:
    """Runs every cell of the study that the store does not hold yet (for a tuned study:
    what is left of every group's budget).

    Args:
        spec: the validated study.
        results: results root (local path or pyarrow URI).
        address: a Ray cluster to join ('auto', 'HOST:PORT', 'ray://...'); None starts
            an embedded local Ray.
        yes: allow grids over plan.MAX_CELLS_WITHOUT_CONFIRM cells (tuned studies: over
            tuned_plan.MAX_GROUPS_WITHOUT_CONFIRM groups).
        out: where progress goes.
        new_version: when the store holds another spec under the study's name, store
            this one as ``<study>.v2`` (.v3, ...) instead of refusing (study.identity).
        filesystem: a pyarrow filesystem for the store (results is then a path in it).
    Returns:
        The final progress counts (cells run this time, by status).
    Raises:
        SpecError, StoreError: before any trial, for bad input or an unusable store;
            StoreError during the study when a result cannot be written (a full disk).
    """
    address = cluster_address(address)  # a bad address fails before any work
    study = choose_study(spec, results, new_version, filesystem)
    if study != spec.study:
        out.write(f"[{spec.study}] the store holds a different spec under this name; "
                  f"--new-version: storing this one as study {study!r}\n")
        spec = dataclasses.replace(spec, study=study)
    store = ResultsStore(results, spec.study, filesystem)
    with hold(store, "submit", "submitting", out) as lease:  # one driver per study
        plan = make_plan(spec, store, yes, local=runs_here(address))
        for line in damage_lines(store, plan.unreadable_means):
            out.write(f"[{spec.study}] {line}\n")
        out.write(f"[{spec.study}] {plan.describe()}\n")
        store.write_study_json(study_record(spec, store))
        progress = Progress(spec.study, plan.budget, out)
        lease.info = lambda: progress_info(progress)
        if not plan.budget:
            out.write(f"[{spec.study}] nothing to run: {plan.nothing_left} in {store.shown}\n")
            return progress
        run_plan(spec, plan, store, progress, address, out)
    out.write(f"[{spec.study}] results in {store.shown}\n")
    return progress


def run_plan(spec: StudySpec, plan: Plan, store: ResultsStore, progress: Progress,
             address: str | None, out: TextIO) -> None:
    """The runner over the plan, its cells recorded in the store as they finish."""
    launched = run(spec, plan, Recorder(store, progress), address)
    if launched < progress.total:  # a group's space held fewer distinct cells than n_trials
        out.write(f"[{spec.study}] {progress.total - launched} trials not run: their groups' "
                  "search spaces hold no further distinct cell\n")
        progress.total = launched
    progress.close()


def study_record(spec: StudySpec, store: ResultsStore) -> dict[str, Any]:
    """study.json: the spec as submitted, the code version and every submission's time."""
    stamp = now()
    previous = store.read_study_json() or {}
    return {
        "study": spec.study,
        "spec_yaml": spec.source,
        "created_at": previous.get("created_at", stamp),
        "submitted_at": [*previous.get("submitted_at", []), stamp],
        "spec_path": spec.origin or previous.get("spec_path", ""),
        **versions(),
    }
