"""Submitting a study: the one way through the house.

    spec (study.spec) -> the study name to store it under (study.identity)
      -> plan: what to run, decided before Ray starts (study.plan: grid or tuned)
      -> validate: the cells to run (study.validate; data files when trials run here),
         in a child process while Ray starts (study.check_process)
      -> runner: the only driver-side Ray code, one Tuner (study.runner)
           trials: study.ray_trial -> trainables.run.run_cells (no Ray below this)
      -> recorder: each finished cell into the store (study.recorder -> study.store)

The store, not Ray's experiment state, is the record: a study whose driver died is
finished by submitting it again, on any cluster. Nothing is written before the cluster
accepted the driver and the cells passed their checks: study.json is written then, and a
start that fails leaves the store as it was. Ray is imported only once something is to
run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from typing import Any, TextIO

from study.check_process import Checks
from study.identity import choose_study
from study.lease import damage_lines, hold, progress_info
from study.plan import Plan, make_plan
from study.progress import Progress, cell_label, clock
from study.spec import StudySpec
from study.store import ResultsStore
from study.validate import check
from trainables.provenance import now, versions


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) during a submission; what was stored stays stored."""


@dataclasses.dataclass(frozen=True)
class Options:
    """How `adstudy submit` runs, beside the spec (none of it changes a result)."""

    dry_run: bool = False  # print the plan, write nothing, start no Ray
    verbose: bool = False  # Ray's and Tune's own output shown
    quiet_ray: bool = False  # Ray's own output into a log file (the CLI, not verbose)
    every_s: float = 10.0  # seconds between progress lines in a log


def submit(
    spec: StudySpec,
    results: str = "results",
    address: str | None = None,
    yes: bool = False,
    out: TextIO = sys.stdout,
    new_version: bool = False,
    filesystem=None,
    options: Options = Options(),
) -> Progress:
    """Runs every cell of the study that the store does not hold yet (for a tuned study:
    what is left of every group's budget).

    Args:
        spec: the validated study.
        results: results root (local path or pyarrow URI).
        address: a Ray cluster to join ('auto', 'HOST:PORT', 'ray://...'); None starts
            an embedded local Ray (or joins RAY_ADDRESS).
        yes: allow grids over plan.MAX_CELLS_WITHOUT_CONFIRM cells (tuned studies: over
            tuned_plan.MAX_GROUPS_WITHOUT_CONFIRM groups).
        out: where progress goes.
        new_version: when the store holds another spec under the study's name, store
            this one as ``<study>.v2`` (.v3, ...) instead of refusing (study.identity).
        filesystem: a pyarrow filesystem for the store (results is then a path in it).
        options: dry run, verbosity, progress interval (Options).
    Returns:
        The final progress counts (cells run this time, by status).
    Raises:
        SpecError, StoreError: before any trial, for bad input or an unusable store;
            StoreError during the study when a result cannot be written (a full disk).
        Interrupted: on Ctrl-C or SIGTERM, once the counts are said.
    """
    study = choose_study(spec, results, new_version, filesystem)
    if study != spec.study:
        say(out, spec.study, "the store holds a different spec under this name; "
            f"--new-version: storing this one as study {study!r}")
        spec = dataclasses.replace(spec, study=study)
    store = ResultsStore(results, spec.study, filesystem)
    joined = address or os.environ.get("RAY_ADDRESS") or None
    if options.dry_run:  # writes nothing, so takes no lease
        return dry_run(spec, store, yes, joined, out, options)
    with hold(store, "submit", "submitting", out) as lease:  # one driver per study
        plan, progress = plan_study(spec, store, out, yes, options)
        lease.info = lambda: {**progress_info(progress), "cells_expected": plan.total}
        lease.renew()  # `adstudy status` sees the plan now, not at the next heartbeat
        if plan.budget:
            run_plan(spec, plan, store, progress, joined, out, options)
            say(out, spec.study, f"results in {store.shown}")
    return progress


def plan_study(spec: StudySpec, store: ResultsStore, out: TextIO, yes: bool,
               options: Options) -> tuple[Plan, Progress]:
    """The plan, said (its cells are checked by dry_run, or by run_plan as Ray starts)."""
    plan = make_plan(spec, store, yes)
    for line in damage_lines(store, plan.unreadable_means):
        say(out, spec.study, line)
    say(out, spec.study, plan.describe())
    progress = Progress(spec.study, plan.budget, out, options.every_s,
                        label=labeller(spec), best=best_of(spec))
    if not plan.budget:
        say(out, spec.study, f"nothing to run: {plan.nothing_left} in {store.shown}")
    return plan, progress


def dry_run(spec: StudySpec, store: ResultsStore, yes: bool, joined: str | None,
            out: TextIO, options: Options) -> Progress:
    """The plan said and its cells checked, and what would run: nothing written, no Ray."""
    plan, progress = plan_study(spec, store, out, yes, options)
    if plan.budget:
        check_cells(spec, plan, runs_here(joined))
        say(out, spec.study, dry_run_text(spec, plan, joined))
    return progress


def check_cells(spec: StudySpec, plan: Plan, here: bool) -> None:
    """The plan's cells checked (study.validate), their data files too when ``here``:
    trials that run on this machine read its files."""
    check(plan.cells_to_check(), spec.run.files_root if here else None,
          shape_root=spec.run.data_root)


def dry_run_text(spec: StudySpec, plan: Plan, joined: str | None) -> str:
    """What would run, and how: trials of packed cells at so many at a time here."""
    unit = "trials" if spec.search == "optuna" else "cells"
    text = f"dry run: {plan.budget} {unit} would run"
    if joined:
        text += f" on the Ray cluster at {joined}"
    else:
        slots = max(1, int((os.cpu_count() or 1) / max(spec.resources.cpu, 1e-9)))
        slots = min(slots, spec.resources.max_concurrent or slots)
        packs = plan.packs(slots)
        if packs:
            text += f" as {len(packs)} trials of up to {max(map(len, packs))} cells"
        text += f", {slots} at a time on a local Ray"
    return text + "; nothing written, no Ray started"


def say(out: TextIO, study: str, text: str) -> None:
    out.write(f"[{study}] {text}\n")
    out.flush()


def labeller(spec: StudySpec):
    """A cell's name in the lines: its values on the study's axes (tuned ones too)."""
    fields = [*spec.axes, *(axis.field for axis in spec.tune)]
    return lambda cell: cell_label(cell, fields)


def best_of(spec: StudySpec) -> tuple[str, str] | None:
    return (spec.optuna.metric, spec.optuna.mode) if spec.search == "optuna" else None


def runs_here(address: str | None) -> bool:
    """True when the trials run on this machine: no cluster to join, and no Ray already
    connected with nodes elsewhere (asked only when Ray is loaded: none started yet)."""
    if address:
        return False
    if "ray" not in sys.modules:
        return True
    from study.runner import runs_here as ray_runs_here

    return ray_runs_here(None)


def run_plan(spec: StudySpec, plan: Plan, store: ResultsStore, progress: Progress,
             address: str | None, out: TextIO, options: Options) -> None:
    """The plan's cells checked (study.check_process) while Ray starts, then the runner
    over the plan, its cells recorded in the store as they finish; the store prepared
    first (the lease removes it again when the cluster never accepted the driver and the
    folder is new: study.lease). Nothing is written and no trial starts before the checks
    passed."""
    store.prepare()  # an unwritable store fails here, before Ray is loaded
    checked = Checks(plan.cells_to_check(), spec.run.files_root if runs_here(address) else None,
                     spec.run.data_root)  # in a process of their own, while Ray starts
    asked = progress.now()

    def on_start(cluster: dict[str, Any]) -> None:
        took = progress.now() - asked
        checked.result()  # a refusal raises here, and Ray is stopped again (runner.run)
        store.write_study_json(study_record(spec, store))
        say(out, spec.study, f"Ray up in {took:.0f} s: {cluster['nodes']} "
            f"node(s), {cluster['cpus']:g} CPUs, {cluster['gpus']:g} GPUs, {cluster['slots']} "
            "trials at a time")

    log, ran = None, False
    try:
        say(out, spec.study, f"joining the Ray cluster at {address} ..." if address
            else "starting a local Ray ...")
        from study.recorder import Recorder
        from study.runner import cluster_address, run  # Ray from here on (seconds to import)

        with (ray_log(out, spec.study) if options.quiet_ray else contextlib.nullcontext()) \
                as log:
            launched = run(spec, plan, Recorder(store, progress), cluster_address(address),
                           on_start, options.verbose)
        ran = True
    except Exception:
        checked.result()  # bad input is said first, before a cluster that failed to start
        raise
    except KeyboardInterrupt:
        progress.close()
        stored = plan.stored + sum(progress.counts[s] for s in ("complete", "diverged", "pruned"))
        say(out, spec.study, f"interrupted: {stored} of {plan.total} stored; "
            "submit again to resume")
        raise Interrupted(spec.study) from None
    finally:
        checked.close()
        if not ran:
            leave_log(out, spec.study, log)
    finish(spec.study, plan, progress, launched, out, log)


def ray_log(out: TextIO, study: str):
    from study.console import Terminal, ray_output_to_log

    terminal = out if isinstance(out, Terminal) else Terminal(out)
    return ray_output_to_log(terminal, study)


def leave_log(out: TextIO, study: str, log: str | None) -> None:
    """After a run that did not end (refused, interrupted, failed): Ray's output file kept
    and named when Ray said something in it, else removed."""
    with contextlib.suppress(OSError):
        if log and os.path.getsize(log):
            say(out, study, f"Ray's own output: {log}")
        elif log:
            os.remove(log)


def finish(study: str, plan: Plan, progress: Progress, launched: int, out: TextIO,
           log: str | None) -> None:
    """The last counts, what failed, and where Ray's own output went."""
    if launched < progress.total:  # a group's space held fewer distinct cells than n_trials
        say(out, study, f"{progress.total - launched} trials not run: their groups' search "
            "spaces hold no further distinct cell")
        progress.total = launched
    progress.close()
    counts = ", ".join(f"{n} {s}" for s, n in sorted(progress.counts.items()))
    say(out, study, f"done in {clock(progress.now() - progress.started)}: {progress.done} of "
        f"{progress.total} stored ({counts or 'none'})")
    failed = progress.counts["failed"]
    if failed:
        say(out, study, f"{failed} {'cell' if failed == 1 else 'cells'} failed (their rows say "
            "why); submit again to run them again")
    if log and (failed or progress.retried):
        say(out, study, f"Ray's own output: {log}")
    elif log:
        with contextlib.suppress(OSError):
            os.remove(log)


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
