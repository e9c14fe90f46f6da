"""One Ray Tune search algorithm and scheduler over many groups, each with its own search.

Every group (study.tuning) gets its own ``OptunaSearch`` (its own Optuna study and seeded
sampler) and, with ``optuna.asha``, its own ASHA scheduler. ``GroupSearch`` routes Tune's
suggestions to the groups, always to a group with the fewest trials launched so far, so
all groups advance together and one Tuner keeps every slot of the cluster busy (one Tuner
per group, run one after another, would leave slots idle whenever a group has fewer
trials in flight than there are slots). ``GroupScheduler`` routes each trial's results
to its group's ASHA, so trials are only ever stopped against trials of the same group.

A group's Optuna study sees exactly one number per trial: the selection metric of a
complete trial's final record (optuna.metric; the spec allows a test-label metric only
with ``optuna.labels: test``). Diverged and ASHA-stopped trials are told as pruned (TPE
counts them among the bad ones), crashed trials as failed (ignored by the samplers).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from study.spec import StudySpec
from study.tunespec import TuneAxis
from study.tuning import (
    Group,
    encode,
    params_of,
    sampler_seed,
    tuned_cell,
    tuned_fields,
)

MAX_REDRAWS = 20  # suggestions that repeat a group's cell before its space counts as used up


def distribution(axis: TuneAxis) -> optuna.distributions.BaseDistribution:
    """One tune axis as an Optuna distribution (choices encoded as study.tuning.encode)."""
    dist = optuna.distributions
    if axis.kind == "choice":
        return dist.CategoricalDistribution([encode(axis, v) for v in axis.values])
    low, high = axis.values
    kinds = {"uniform": (dist.FloatDistribution, False),
             "log_uniform": (dist.FloatDistribution, True),
             "int_uniform": (dist.IntDistribution, False),
             "int_log_uniform": (dist.IntDistribution, True)}
    kind, log = kinds[axis.kind]
    return kind(low, high, log=log)


def optuna_space(spec: StudySpec) -> dict[str, optuna.distributions.BaseDistribution]:
    """The search space of every group: field -> distribution."""
    return {axis.field: distribution(axis) for axis in spec.tune}


def make_sampler(spec: StudySpec, gid: str) -> optuna.samplers.BaseSampler:
    """The group's sampler, seeded by the spec's seed and the group id."""
    seed, o = sampler_seed(spec.optuna.seed, gid), spec.optuna
    startup = o.startup_trials or max(1, min(10, o.n_trials // 3))
    with warnings.catch_warnings():  # QMC is marked experimental in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        samplers = {
            # constant_liar: trials still running count as bad guesses, so parallel
            # suggestions of one group spread out instead of repeating each other.
            "tpe": lambda: optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=startup, constant_liar=True),
            "random": lambda: optuna.samplers.RandomSampler(seed=seed),
            "qmc": lambda: optuna.samplers.QMCSampler(seed=seed),
        }
        return samplers[o.sampler]()


def group_searcher(spec: StudySpec, group: Group) -> OptunaSearch:
    """The group's OptunaSearch, warm-started from its stored trials."""
    o = spec.optuna
    searcher = OptunaSearch(space=optuna_space(spec), metric=o.metric, mode=o.mode,
                            sampler=make_sampler(spec, group.group_id),
                            study_name=group.group_id)
    for trial in group.stored:
        params = params_of(trial.cell, spec)
        if params is None or trial.status == "failed":
            continue  # outside today's space, or a crash: nothing to learn from
        if trial.value is not None:
            searcher.add_evaluated_point(params, trial.value)
        else:  # diverged or stopped early: a bad point
            searcher.add_evaluated_point(params, None, pruned=True)
    return searcher


@dataclasses.dataclass
class Slot:
    """A group's search and its budget in this submission."""

    group: Group
    searcher: OptunaSearch
    remaining: int
    next_index: int
    known: set[str]  # cell ids stored or launched: a repeat is drawn again
    launched: int = 0
    used_up: bool = False


class GroupSearch(Searcher):
    """Routes Tune's suggestions to one OptunaSearch per group, equal budget each.

    No metric is declared to Tune (each group's search holds its own), so Tune's strict
    metric check does not ask every record, failed ones included, for one.
    """

    def __init__(self, spec: StudySpec, groups: list[Group]):
        super().__init__(metric=None, mode=None)
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # else a line per study and trial
        self.spec = spec
        self.slots = [
            Slot(g, group_searcher(spec, g), max(0, spec.optuna.n_trials - g.spent),
                 g.next_index, {t.cell.cell_id for t in g.stored if t.status != "failed"})
            for g in groups
        ]
        self.routes: dict[str, tuple[Slot, str]] = {}
        self.tags = {"tuned_axes": ",".join(tuned_fields(spec)),
                     "tune_metric": spec.optuna.metric}

    @property
    def launched(self) -> int:
        return sum(s.launched for s in self.slots)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # the groups' searches were set up from the study spec

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next trial of a group with the fewest launched (FINISHED when none is left)."""
        while True:
            open_slots = [s for s in self.slots if s.remaining > 0 and not s.used_up]
            if not open_slots:
                return Searcher.FINISHED
            slot = min(open_slots, key=lambda s: s.launched)
            config = self._draw(slot, trial_id)
            if config is not None:
                return config
            slot.used_up = True

    def _draw(self, slot: Slot, trial_id: str) -> dict[str, Any] | None:
        for attempt in range(MAX_REDRAWS):
            key = trial_id if attempt == 0 else f"{trial_id}~{attempt}"
            cell = tuned_cell(slot.group.base, self.spec, slot.searcher.suggest(key))
            if cell.cell_id in slot.known:  # a repeat: told as failed, ignored by samplers
                slot.searcher.on_trial_complete(key, None, error=True)
                continue
            slot.known.add(cell.cell_id)
            slot.remaining -= 1
            slot.launched += 1
            slot.next_index += 1
            self.routes[trial_id] = (slot, key)
            tags = self.tags | {"group_id": slot.group.group_id,
                                "group_trial": slot.next_index - 1}
            return {"cells": [cell.to_dict()], "tags": tags}
        return None

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Intermediate records are ASHA's business (GroupScheduler), not Optuna's."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        slot, key = self.routes.pop(trial_id, (None, None))
        if slot is None:
            return
        value = selection_value(result, self.spec.optuna.metric)
        if error or (result or {}).get("status") == "failed":  # a crash: nothing learnt
            slot.searcher.on_trial_complete(key, None, error=True)
        elif value is None:  # diverged, or stopped early: pruned
            slot.searcher.on_trial_complete(key, {}, error=False)
        else:  # only the selection metric reaches Optuna
            slot.searcher.on_trial_complete(key, {self.spec.optuna.metric: value})

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the results store is the record (study.tuning)."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore: a resubmission warm-starts from the store."""


def selection_value(result: dict | None, metric: str) -> float | None:
    """The selection metric of a complete trial's final record, else None."""
    if not result or result.get("kind") != "final" or result.get("status") != "complete":
        return None
    value = result.get(metric)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


class GroupScheduler(FIFOScheduler):
    """One scheduler (ASHA) per group; remembers the trials it stopped early."""

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


def asha_scheduler(spec: StudySpec, max_epochs: int) -> GroupScheduler | None:
    """A GroupScheduler of ASHAs for the spec's optuna.asha (None without it)."""
    from study.tunespec import EPOCH_METRICS

    asha = spec.optuna.asha
    if asha is None:
        return None
    return GroupScheduler(lambda: AsyncHyperBandScheduler(
        time_attr="training_iteration", metric=asha.metric,
        mode=EPOCH_METRICS[asha.metric][0], grace_period=asha.grace_period,
        reduction_factor=asha.reduction_factor, max_t=max_epochs + 1,
    ))
