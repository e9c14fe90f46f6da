"""Submitting a study: validate, skip what the store holds, run the rest on Ray Tune.

The store, not Ray's experiment state, is the record: a study whose driver died is
finished by submitting it again, on any cluster.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from study.cell import Cell
from study.errors import SpecError
from study.grid import count, expand
from study.groups import auto_group_size, group_cells
from study.progress import Progress
from study.provenance import versions
from study.spec import StudySpec
from study.store import ResultsStore

if TYPE_CHECKING:
    from study.callbacks import StoreCallback

MAX_CELLS_WITHOUT_CONFIRM = 100_000
# Failed cells (a crash, a lost node) are run again on resubmission; the rest are final.
FINAL_STATUSES = ("complete", "diverged")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a submission will do, decided before Ray starts."""

    cells: list[Cell]
    todo: list[Cell]
    stored: dict[str, str]

    def describe(self) -> str:
        retried = sum(1 for c in self.todo if c.cell_id in self.stored)
        text = f"{len(self.cells)} cells in the study, {len(self.cells) - len(self.todo)} stored"
        text += f", {len(self.todo)} to run"
        return text + (f" ({retried} failed before, retried)" if retried else "")


def plan(spec: StudySpec, store: ResultsStore, yes: bool = False,
         local: bool = False) -> Plan:
    """Expands and validates the grid and subtracts the stored cells. With ``local`` (the
    trials run on this machine) the datasets' files are checked too; on a cluster the data
    may live on the workers only, so a missing file is a trial's error there.

    Raises:
        SpecError: for a grid too large without ``yes`` or a cell no trainer could run.
    """
    from study.validate import validate_cells

    if count(spec) > MAX_CELLS_WITHOUT_CONFIRM and not yes:
        raise SpecError(
            f"the grid has {count(spec):,} cells (over {MAX_CELLS_WITHOUT_CONFIRM:,}); "
            "pass --yes to run it anyway"
        )
    cells = expand(spec)
    validate_cells(cells, spec.run.data_root if local else None,
                   shape_root=spec.run.data_root)
    store.prepare()
    stored = store.stored_statuses()
    todo = [c for c in cells if stored.get(c.cell_id) not in FINAL_STATUSES]
    return Plan(cells=cells, todo=todo, stored=stored)


def submit(
    spec: StudySpec,
    results: str = "results",
    address: str | None = None,
    yes: bool = False,
    out: TextIO = sys.stdout,
    new_version: bool = False,
    filesystem=None,
) -> Progress:
    """Runs every cell of the study that the store does not hold yet.

    Args:
        spec: the validated study.
        results: results root (local path or pyarrow URI).
        address: a Ray cluster to join ('auto', 'HOST:PORT', 'ray://...'); None starts
            an embedded local Ray.
        yes: allow grids over MAX_CELLS_WITHOUT_CONFIRM cells.
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
    from study.identity import choose_study

    address = cluster_address(address)  # a bad address fails before any work
    study = choose_study(spec, results, new_version, filesystem)
    if study != spec.study:
        out.write(f"[{spec.study}] the store holds a different spec under this name; "
                  f"--new-version: storing this one as study {study!r}\n")
        spec = dataclasses.replace(spec, study=study)
    if spec.search == "optuna":  # tuned groups, one Optuna search each: study/tune_run.py
        from study.tune_run import submit_tuned

        return submit_tuned(spec, results, address, yes, out, filesystem)
    store = ResultsStore(results, spec.study, filesystem)
    work = plan(spec, store, yes, local=runs_here(address))
    for path, reason in store.unreadable.items():
        out.write(f"[{spec.study}] warning: cannot read {path} ({reason}); its cell runs again\n")
    out.write(f"[{spec.study}] {work.describe()}\n")
    store.write_study_json(study_record(spec, store))
    progress = Progress(spec.study, len(work.todo), out)
    if not work.todo:
        out.write(f"[{spec.study}] nothing to run: every cell is stored in {store.path}\n")
        return progress
    run_on_ray(spec, work.todo, store, progress, address)
    progress.close()
    out.write(f"[{spec.study}] results in {store.path}\n")
    return progress


def study_record(spec: StudySpec, store: ResultsStore) -> dict[str, Any]:
    """study.json: the spec as submitted, the code version and every submission's time."""
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    previous = store.read_study_json() or {}
    return {
        "study": spec.study,
        "spec_yaml": spec.source,
        "created_at": previous.get("created_at", now),
        "submitted_at": [*previous.get("submitted_at", []), now],
        **versions(),
    }


def run_on_ray(
    spec: StudySpec, todo: list[Cell], store: ResultsStore, progress: Progress, address: str | None
) -> None:
    """One Tune trial per group of cells; the store callback writes each cell as it
    finishes."""
    from ray import tune

    from study.callbacks import StoreCallback
    from study.trainable import run_trial

    callback = StoreCallback(store, progress)

    def tuner(scratch: str) -> tune.Tuner:
        size = spec.run.cells_per_trial or auto_group_size(len(todo), trial_slots(spec))
        groups = group_cells(todo, size)
        return tune.Tuner(
            tune.with_resources(run_trial, {"cpu": spec.resources.cpu,
                                            "gpu": spec.resources.gpu}),
            param_space={
                "cells": tune.grid_search([[c.to_dict() for c in group] for group in groups]),
                "data_root": spec.run.data_root,
                "device": spec.run.device,
                "save_weights": spec.run.save_weights,
            },
            tune_config=tune.TuneConfig(
                max_concurrent_trials=spec.resources.max_concurrent or None,
                reuse_actors=spec.run.reuse_actors,
                trial_dirname_creator=trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=spec.study,
                storage_path=scratch,
                verbose=0,
                callbacks=[callback],
                failure_config=tune.FailureConfig(max_failures=spec.run.max_failures),
            ),
        )

    fit_on_ray(spec, address, tuner, callback)


def fit_on_ray(spec: StudySpec, address: str | None, tuner: Callable[[str], Any],
               callback: StoreCallback) -> None:
    """Runs ``tuner(scratch_dir).fit()`` on the cluster: joins ``address`` (or starts a
    local Ray, stopped again at the end) unless Ray is already up, and raises the store
    callback's failure (a result that could not be written) in place of Tune's error."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # the store is the log
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our progress line replaces Tune's tables
    # Tune's result analysis looks for the per-trial logs we turned off; its warning is noise.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        init_ray(address)
    scratch = tempfile.mkdtemp(prefix="adstudy-tune-")
    try:
        check_gpus(spec, joined=cluster_address(address) is not None)
        tuner(scratch).fit()
    except Exception:
        if callback.failure is not None:  # a result could not be written: say which and why
            raise callback.failure from None
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if started_here:
            ray.shutdown()
    if callback.failure is not None:  # raised inside Tune, in case Tune ever swallows it
        raise callback.failure


def check_gpus(spec: StudySpec, joined: bool) -> None:
    """A study asking for GPUs on a Ray that has none is refused when that Ray is local (it
    never gets one: its trials would wait forever); a joined cluster may add GPU nodes
    (the autoscaler, cluster.yaml), so there it only gets a note."""
    import ray

    if not spec.resources.gpu or ray.cluster_resources().get("GPU", 0) > 0:
        return
    message = (f"resources.gpu: {spec.resources.gpu} asks for a GPU share per trial, but the "
               "Ray cluster has no GPU")
    if not joined:
        raise SpecError(f"{message}; set resources.gpu: 0 to train on CPUs (the paper presets "
                        "ask for a quarter GPU a trial)")
    sys.stderr.write(f"[{spec.study}] note: {message} yet; trials wait for a GPU node\n")


def runs_here(address: str | None) -> bool:
    """True when the trials run on this machine (so its files are theirs): no cluster to
    join, and no Ray already connected with a node elsewhere."""
    if address is not None:
        return False
    import ray

    if not ray.is_initialized():
        return True
    here = ray.util.get_node_ip_address()
    return all(n["NodeManagerAddress"] == here for n in ray.nodes() if n["Alive"])


def trial_slots(spec: StudySpec) -> int:
    """How many trials the connected cluster runs at once with the spec's resources."""
    import ray

    total = ray.cluster_resources()
    slots = total.get("CPU", 1) / max(spec.resources.cpu, 1e-9)
    if spec.resources.gpu:
        slots = min(slots, total.get("GPU", 0) / spec.resources.gpu)
    if spec.resources.max_concurrent:
        slots = min(slots, spec.resources.max_concurrent)
    return max(1, int(slots))


def trial_dirname(trial) -> str:
    cells = trial.config["cells"]
    first = Cell.from_dict(cells[0]).cell_id
    return first if len(cells) == 1 else f"{first}+{len(cells) - 1}"


def cluster_address(address: str | None) -> str | None:
    """The cluster to join: ``address``, else RAY_ADDRESS (set for a Ray Jobs driver).

    Raises:
        SpecError: for a ``ray://`` address when the Ray Client is not installed.
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address.startswith("ray://"):
        try:
            import grpc  # noqa: F401  (the Ray Client's transport, from ray[client])
        except ImportError:
            raise SpecError(
                f"--address {address!r} needs the Ray Client: pip install 'ray[client]', "
                "or pass the GCS address HOST:6379 (or 'auto' on a cluster node)"
            ) from None
    return address


def init_ray(address: str | None, **kwargs: Mapping[str, Any]) -> None:
    """Joins the cluster at ``address`` (or RAY_ADDRESS) or starts a local Ray.

    A cluster started with token authentication (RAY_AUTH_MODE=token) is joined with the
    token Ray finds in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token.
    """
    import ray

    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    address = cluster_address(address)
    if address:
        try:
            ray.init(address=address, **quiet, **kwargs)
        except ConnectionError as err:
            raise ConnectionError(
                f"cannot join the Ray cluster at {address!r}: {err}. Is it running? A "
                "cluster started with RAY_AUTH_MODE=token needs RAY_AUTH_MODE=token and its "
                "token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) here too"
            ) from err
    else:
        ray.init(address="local", include_dashboard=False, **quiet, **kwargs)
