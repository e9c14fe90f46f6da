"""The runner: the only driver-side Ray code (joining or starting Ray, one Tuner, fit).

It is given a plan (study.plan: what to run, decided before Ray starts) and a Recorder
(study.recorder: where each finished cell goes). A plan either names its trials (a grid:
packs of cells) or hands them out one by one (a tuned study: a GroupSearch, with ASHA per
group); the runner adapts those, and the recorder, to Tune's interfaces. Trials run
study.ray_trial.run_trial, the worker-side entry point.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from study.cell import Cell
from study.errors import SpecError
from study.group_search import GroupSearch
from study.plan import Plan
from study.ray_trial import run_trial
from study.recorder import Recorder, TrialInfo
from study.spec import StudySpec


def run(spec: StudySpec, plan: Plan, recorder: Recorder, address: str | None) -> int:
    """Runs the plan's trials on the cluster: joins ``address`` (or starts a local Ray,
    stopped again at the end) unless Ray is already up; returns the cells launched.

    Raises:
        StoreError: the recorder's failure (a result that could not be written), in
            place of Tune's error.
        SpecError: for GPUs asked of a local Ray that has none.
    """
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # the store is the log
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our progress line replaces Tune's tables
    # Tune's result analysis looks for the per-trial logs we turned off; its warning is noise.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    started_here = not ray.is_initialized()
    if started_here:
        init_ray(address)
    scratch = tempfile.mkdtemp(prefix="adstudy-tune-")
    try:
        check_gpus(spec, joined=cluster_address(address) is not None)
        launched = fit(spec, plan, recorder, scratch)
    except Exception:
        if recorder.failure is not None:  # a result could not be written: say which and why
            raise recorder.failure from None
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if started_here:
            ray.shutdown()
    if recorder.failure is not None:  # raised inside Tune, in case Tune ever swallows it
        raise recorder.failure
    return launched


def fit(spec: StudySpec, plan: Plan, recorder: Recorder, scratch: str) -> int:
    """Builds the one Tuner for the plan, runs it; returns the cells launched."""
    packs = plan.packs(trial_slots(spec))
    search, scheduler, space = None, None, {}
    if packs is not None:  # the trials are known: one per pack
        space = {"cells": tune.grid_search([[c.to_dict() for c in p] for p in packs])}
    else:  # the plan hands the trials out one by one
        search = plan.search()
        asha = plan.asha()
        if asha is not None:
            scheduler = GroupScheduler(lambda: AsyncHyperBandScheduler(
                time_attr="training_iteration", **asha))
    tuner = tune.Tuner(
        tune.with_resources(run_trial, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}),
        param_space={**space, "data_root": spec.run.data_root, "device": spec.run.device,
                     "gpu_fallback": spec.run.gpu_fallback, "save_weights": spec.run.save_weights},
        tune_config=tune.TuneConfig(
            search_alg=None if search is None else TuneSearch(search), scheduler=scheduler,
            num_samples=1 if search is None else plan.budget,
            max_concurrent_trials=spec.resources.max_concurrent or None,
            reuse_actors=spec.run.reuse_actors, trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=spec.study, storage_path=scratch, verbose=0,
            callbacks=[StoreCallback(recorder, scheduler)],
            failure_config=tune.FailureConfig(max_failures=spec.run.max_failures),
        ),
    )
    tuner.fit()
    return sum(len(p) for p in packs) if search is None else search.launched


def trial_dirname(trial) -> str:
    cells = trial.config["cells"]
    first = Cell.from_dict(cells[0]).cell_id
    return first if len(cells) == 1 else f"{first}+{len(cells) - 1}"


class StoreCallback(tune.Callback):
    """Tune's callback events, as plain data, to the Recorder."""

    def __init__(self, recorder: Recorder, scheduler: GroupScheduler | None = None):
        self.recorder = recorder
        self.scheduler = scheduler

    @staticmethod
    def info(trial) -> TrialInfo:
        return TrialInfo.of(trial.trial_id, trial.config, trial.num_failures)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.recorder.result(self.info(trial), result)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        self.recorder.recover(self.info(trial))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.recorder.error(self.info(trial), getattr(trial, "error_msg", "") or "")

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        if self.scheduler is not None and trial.trial_id in self.scheduler.stopped:
            self.recorder.stopped(self.info(trial))  # else written already, or interrupted


class TuneSearch(Searcher):
    """A GroupSearch as Tune's search algorithm. No metric is declared to Tune (each
    group's search holds its own), so Tune's strict metric check does not ask every
    record, failed ones included, for one. The store is the record: nothing to save."""

    def __init__(self, search: GroupSearch):
        super().__init__(metric=None, mode=None)
        self.search = search

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # the groups' searches were set up from the study spec

    def suggest(self, trial_id: str) -> dict[str, Any] | str:
        config = self.search.suggest(trial_id)
        return Searcher.FINISHED if config is None else config

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        self.search.complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: a resubmission warm-starts from the store."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore."""


class GroupScheduler(FIFOScheduler):
    """One scheduler (ASHA) per group, so a trial is only ever stopped against trials of
    its own group; remembers the trials it stopped early."""

    def __init__(self, make: Callable[[], TrialScheduler]):
        super().__init__()
        self.make = make
        self.groups: dict[str, TrialScheduler] = {}
        self.stopped: set[str] = set()

    def _of(self, trial) -> TrialScheduler:
        gid = trial.config["tags"]["group_id"]
        if gid not in self.groups:
            self.groups[gid] = self.make()
        return self.groups[gid]

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True

    def on_trial_add(self, tune_controller, trial) -> None:
        self._of(trial).on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial) -> None:
        self._of(trial).on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        decision = self._of(trial).on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP and result.get("kind") == "epoch":
            self.stopped.add(trial.trial_id)
        return decision

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self._of(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._of(trial).on_trial_remove(tune_controller, trial)


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


def init_ray(address: str | None, **kwargs: Any) -> None:
    """Joins the cluster at ``address`` (or RAY_ADDRESS) or starts a local Ray.

    A cluster started with token authentication (RAY_AUTH_MODE=token) is joined with the
    token Ray finds in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token.
    """
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


def runs_here(address: str | None) -> bool:
    """True when the trials run on this machine (so its files are theirs): no cluster to
    join, and no Ray already connected with a node elsewhere."""
    if address is not None:
        return False
    if not ray.is_initialized():
        return True
    here = ray.util.get_node_ip_address()
    return all(n["NodeManagerAddress"] == here for n in ray.nodes() if n["Alive"])


def trial_slots(spec: StudySpec) -> int:
    """How many trials the connected cluster runs at once with the spec's resources."""
    total = ray.cluster_resources()
    slots = total.get("CPU", 1) / max(spec.resources.cpu, 1e-9)
    if spec.resources.gpu:
        slots = min(slots, total.get("GPU", 0) / spec.resources.gpu)
    if spec.resources.max_concurrent:
        slots = min(slots, spec.resources.max_concurrent)
    return max(1, int(slots))


def check_gpus(spec: StudySpec, joined: bool) -> None:
    """A study asking for GPUs on a Ray that has none is refused when that Ray is local (it
    never gets one: its trials would wait forever); a joined cluster may add GPU nodes
    (the autoscaler, cluster.yaml), so there it only gets a note."""
    if not spec.resources.gpu or ray.cluster_resources().get("GPU", 0) > 0:
        return
    message = (f"resources.gpu: {spec.resources.gpu} asks for a GPU share per trial, but the "
               "Ray cluster has no GPU")
    if not joined:
        raise SpecError(f"{message}; set resources.gpu: 0 to train on CPUs (the paper presets "
                        "ask for a quarter GPU a trial)")
    sys.stderr.write(f"[{spec.study}] note: {message} yet; trials wait for a GPU node\n")
