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
import signal
import sys
from collections.abc import Callable
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from study.cell import Cell
from study.errors import SpecError
from study.group_search import GroupSearch
from study.limits import check_resources
from study.plan import Plan
from study.ray_trial import run_trial
from study.recorder import Failure, Recorder, TrialInfo, short_cause
from study.scratch import make_scratch
from study.spec import StudySpec

log = logging.getLogger("study.runner")


def run(spec: StudySpec, plan: Plan, recorder: Recorder, address: str | None,
        on_start: Callable[[dict[str, Any]], None] | None = None, verbose: bool = False) -> int:
    """Runs the plan's trials on the cluster: joins ``address`` (or starts a local Ray,
    stopped again at the end) unless Ray is already up; returns the cells launched.

    Args:
        on_start: called once the cluster accepted the driver and the study's resources,
            before any trial, with the cluster's CPUs, GPUs, nodes and trial slots.
        verbose: Ray's and Tune's own output shown (off: only errors that stop Ray).
    Raises:
        StoreError: the recorder's failure (a result that could not be written), in
            place of Tune's error.
        SpecError: for GPUs asked of a local Ray that has none.
        KeyboardInterrupt: on Ctrl-C (Tune's own handler, which would wait for trials to
            stop and print how to resume an experiment adstudy deletes, is off).
    """
    started_here = start(address, verbose)
    scratch = make_scratch()  # and sweep those of killed drivers
    try:
        check_gpus(spec, joined=cluster_address(address) is not None)
        slots = trial_slots(spec)
        if on_start is not None:
            total = ray.cluster_resources()
            on_start({"cpus": total.get("CPU", 0), "gpus": total.get("GPU", 0),
                      "nodes": sum(1 for n in ray.nodes() if n["Alive"]), "slots": slots})
        launched = fit(spec, plan, recorder, scratch, slots)
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


def start(address: str | None, verbose: bool = False) -> bool:
    """Joins ``address`` or starts a local Ray (init_ray) unless Ray is up already; True
    when it did (the caller shuts it down). Call it from the main thread: Ray's processes
    die with the thread that started them. Its start and end go to the logger
    study.runner at level DEBUG."""
    quiet_tune(verbose)
    if ray.is_initialized():
        return False
    caller = signal.getsignal(signal.SIGTERM)
    log.debug("Ray start began")
    init_ray(address, verbose=verbose)
    log.debug("Ray up")
    if callable(caller):  # ray.init's own handler exits without a word: the caller's
        signal.signal(signal.SIGTERM, caller)
    return True


def quiet_tune(verbose: bool) -> None:
    """Tune's output off (unless ``verbose``): the store is the log, the progress line
    replaces Tune's tables, and the recorder says why a trial failed."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C: KeyboardInterrupt, at once
    os.environ["TUNE_PRINT_ALL_TRIAL_ERRORS"] = "1" if verbose else "0"
    # Tune's result analysis looks for the per-trial logs we turned off; its warning is noise.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    logging.getLogger("ray.tune").setLevel(logging.INFO if verbose else logging.CRITICAL)


def fit(spec: StudySpec, plan: Plan, recorder: Recorder, scratch: str, slots: int) -> int:
    """Builds the one Tuner for the plan, runs it; returns the cells launched."""
    packs = plan.packs(slots)
    search, scheduler, space = None, None, {}
    if packs is not None:  # the trials are known: one per pack
        space = {"cells": tune.grid_search([[c.to_dict() for c in p] for p in packs])}
        recorder.planned([len(p) for p in packs], slots)
    else:  # the plan hands the trials out one by one
        search = plan.search()
        recorder.planned([1] * plan.budget, slots)
        asha = plan.asha()
        if asha is not None:
            scheduler = GroupScheduler(lambda: AsyncHyperBandScheduler(
                time_attr="training_iteration", **asha))
    tuner = tune.Tuner(
        tune.with_resources(run_trial, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}),
        param_space={**space, "data_root": spec.run.data_root, "device": spec.run.device,
                     "gpu_fallback": spec.run.gpu_fallback, "save_weights": spec.run.save_weights,
                     # test figures every k-th epoch (trainables.train.scored_epoch)
                     "score_every": spec.run.score_every,
                     # curve figures on a fixed test subsample (trainables.curves)
                     "curve_test_images": spec.run.curve_test_images},
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
    """Tune's callback events, as plain data, to the Recorder; a failed attempt's cause
    looked up in Ray (failure_of)."""

    def __init__(self, recorder: Recorder, scheduler: GroupScheduler | None = None):
        self.recorder = recorder
        self.scheduler = scheduler
        self.actors: dict[str, str] = {}  # trial id -> the actor of its latest attempt

    @staticmethod
    def info(trial) -> TrialInfo:
        return TrialInfo.of(trial.trial_id, trial.config, trial.num_failures)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        actor = getattr(trial.temporary_state, "ray_actor", None)
        actor_id = getattr(actor, "_actor_id", None)
        if actor_id is not None:
            self.actors[trial.trial_id] = actor_id.hex()
        self.recorder.start(self.info(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.recorder.result(self.info(trial), result)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        self.recorder.recover(self.info(trial), failure_of(trial, self.actors.get(trial.trial_id)))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.recorder.error(self.info(trial), failure_of(trial, self.actors.get(trial.trial_id)))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        if self.scheduler is not None and trial.trial_id in self.scheduler.stopped:
            self.recorder.stopped(self.info(trial))  # else written already, or interrupted
        self.recorder.ended(self.info(trial))

    def on_step_end(self, iteration, trials, **info) -> None:
        self.recorder.tick()


def failure_of(trial, actor_id: str | None) -> Failure:
    """Why the trial's latest attempt failed: the exception it raised, or how its process
    or node died (from Ray's record of the trial's actor), where it ran and its log."""
    try:
        err = trial.get_pickled_error()
    except Exception:  # noqa: BLE001 - no error file: the actor's record still says
        err = None
    actor_id = actor_id or getattr(err, "actor_id", None)
    process = process_of(actor_id) if actor_id else {}
    if isinstance(err, ray.exceptions.RayTaskError):  # the trial function raised
        cause = err.cause if isinstance(err.cause, BaseException) else err
        error = short_cause(type(cause).__name__, str(cause))
    elif isinstance(err, ray.exceptions.RayActorError) or process.get("death"):
        error = short_cause(type(err).__name__ if err else "ActorDiedError",
                            process.get("death") or getattr(err, "error_msg", "") or str(err))
    else:
        error = short_cause(type(err).__name__, str(err)) if err else "unknown (see Ray's logs)"
    where = (f"pid {process['pid']} on {process['ip']}" if process.get("pid") else "")
    return Failure(error=error, node_id=process.get("node_id"), log_path=process.get("log"),
                   where=where)


def process_of(actor_id: str) -> dict[str, Any]:
    """Ray's record of an actor (alive or dead): its node, process, how it died, and the
    path of its process's stderr log on that node. {} when Ray cannot say. Reads the
    GCS actor table through ray._private (the public state API needs a dashboard, which a
    local Ray here runs without)."""
    try:
        from ray._private import state
        from ray.core.generated import gcs_pb2

        data = gcs_pb2.ActorTableData.FromString(
            state.state.get_actor_info(ray.ActorID.from_hex(actor_id)))
        session = ray._private.worker._global_node.get_session_dir_path()
    except Exception:  # noqa: BLE001 - a private API: the cause is still stored without it
        return {}
    kind = data.death_cause.WhichOneof("context")  # the process died, its node, an OOM ...
    context = getattr(data.death_cause, kind) if kind else None
    worker, job = data.address.worker_id.hex(), data.job_id.hex()
    return {
        "node_id": data.address.node_id.hex() or None, "pid": data.pid or None,
        "ip": data.address.ip_address, "death": getattr(context, "error_message", ""),
        "log": f"{session}/logs/worker-{worker}-{job}-{data.pid}.err" if data.pid else None,
    }


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


def init_ray(address: str | None, verbose: bool = False, **kwargs: Any) -> None:
    """Joins the cluster at ``address`` (or RAY_ADDRESS) or starts a local Ray; Ray's own
    output (its warnings, the workers' output) only when ``verbose``.

    A cluster started with token authentication (RAY_AUTH_MODE=token) is joined with the
    token Ray finds in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token.
    """
    quiet = {"logging_level": logging.WARNING if verbose else logging.ERROR,
             "log_to_driver": verbose}
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
        # No idle workers started ahead for the driver: Tune's trial actors carry a
        # runtime_env (its env_vars) and so never use them (measured: two Python workers
        # started for nothing, seconds of CPU during the start on 2 cores).
        system = {"prestart_worker_first_driver": False, **kwargs.pop("_system_config", {})}
        ray.init(address="local", include_dashboard=False, _system_config=system, **quiet,
                 **kwargs)


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
    """CPUs, GPUs and run.device against what the Ray cluster has (study.limits): refused
    on a local Ray (it never grows: such trials would wait forever or fail), a note on a
    joined cluster (its autoscaler may add nodes)."""
    check_resources(spec, ray.cluster_resources(), joined, sys.stderr.write)
