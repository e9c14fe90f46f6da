"""One Optuna search per group of a tuned study, each with the same budget.

Every group (study.tuned_groups) gets its own Optuna study (its own seeded sampler), asked
and told directly (as Ray Tune's OptunaSearch does it), kept in the study's Optuna journal
(study.optuna_store) under ``<study>/<group label>``, where optuna.load_study and
optuna-dashboard read it. ``GroupSearch`` hands out the
trials of all groups, always for a group with the fewest trials launched so far, so all
groups advance together and one Tuner keeps every slot of the cluster busy (one Tuner per
group, run one after another, would leave slots idle whenever a group has fewer trials
in flight than there are slots). study.runner adapts it to Tune's Searcher interface;
nothing here imports ray.

A group's Optuna study sees exactly one number per trial: the selection metric of a
complete trial's final record (optuna.metric; the spec allows a test-label metric only
with ``optuna.labels: test``). Diverged and ASHA-stopped trials are told as pruned (TPE
counts them among the bad ones), crashed trials as failed (ignored by the samplers).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import warnings
from typing import Any

import optuna
from optuna.trial import TrialState

from study.optuna_store import OptunaJournal, fits, study_name
from study.progress import cell_label
from study.search_options import TuneAxis
from study.spec import StudySpec
from study.tuned_groups import Group, encode, params_of, tuned_cell, tuned_fields

MAX_REDRAWS = 20  # suggestions that repeat a group's cell before its space counts as used up
log = logging.getLogger(__name__)


def distribution(axis: TuneAxis) -> optuna.distributions.BaseDistribution:
    """One tune axis as an Optuna distribution (choices encoded as tuned_groups.encode)."""
    dist = optuna.distributions
    if axis.kind == "choice":
        return dist.CategoricalDistribution([encode(axis, v) for v in axis.values])
    low, high = axis.values
    kinds = {"uniform": (dist.FloatDistribution, False),
             "log_uniform": (dist.FloatDistribution, True),
             "int_uniform": (dist.IntDistribution, False),
             "int_log_uniform": (dist.IntDistribution, True)}
    kind, log_scale = kinds[axis.kind]
    return kind(low, high, log=log_scale)


def optuna_space(spec: StudySpec) -> dict[str, optuna.distributions.BaseDistribution]:
    """The search space of every group: field -> distribution."""
    return {axis.field: distribution(axis) for axis in spec.tune}


def sampler_seed(seed: int, gid: str) -> int:
    """Each group's sampler seed: the spec's seed and the group id, hashed."""
    return int(hashlib.sha256(f"{seed}:{gid}".encode()).hexdigest()[:8], 16)


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


class GroupStudy:
    """One group's Optuna study, in ``storage`` under ``name`` when given (the study's
    journal, study.optuna_store: loaded from it when it fits the spec), warm-started from
    the group's stored trials it does not hold yet."""

    def __init__(self, spec: StudySpec, group: Group,
                 storage: optuna.storages.BaseStorage | None = None, name: str | None = None):
        self.space = optuna_space(spec)
        self.study = open_study(spec, group, storage, name or group.group_id, self.space)
        self.asked: dict[str, optuna.trial.Trial] = {}
        known = {t.user_attrs.get("cell_id") for t in self.study.get_trials(deepcopy=False)}
        for trial in group.stored:
            params = params_of(trial.cell, spec)
            if params is None or trial.status == "failed" or trial.cell.cell_id in known:
                continue  # outside today's space, a crash, or in the journal already
            # diverged or stopped early (no value): a bad point, told as pruned
            state = TrialState.COMPLETE if trial.value is not None else TrialState.PRUNED
            self.study.add_trial(optuna.trial.create_trial(
                state=state, value=trial.value, params=params, distributions=self.space,
                user_attrs={"cell_id": trial.cell.cell_id, "group_trial": trial.group_trial}))

    def ask(self, key: str) -> dict[str, Any]:
        """The params of a new trial, remembered under ``key`` until it is told."""
        self.asked[key] = self.study.ask(fixed_distributions=self.space)
        return dict(self.asked[key].params)

    def tell(self, key: str, value: float | None, failed: bool = False) -> None:
        """The trial's value; None: pruned (diverged, stopped early) or, if ``failed``,
        failed (a crash, a repeat: ignored by the samplers)."""
        state = TrialState.COMPLETE
        if value is None:
            state = TrialState.FAIL if failed else TrialState.PRUNED
        try:
            self.study.tell(self.asked.pop(key), value, state=state)
        except Exception as err:  # noqa: BLE001 - as Ray's OptunaSearch: a warning, not a stop
            log.warning("optuna could not record trial %s: %s", key, err)


def open_study(spec: StudySpec, group: Group, storage: optuna.storages.BaseStorage | None,
               name: str, space: dict) -> optuna.Study:
    """The group's Optuna study: the one ``storage`` holds under ``name`` when it fits the
    spec (trials a killed driver never told are marked failed), else a new one (a study
    that no longer fits is deleted first)."""
    direction = "minimize" if spec.optuna.mode == "min" else "maximize"
    sampler, pruner = make_sampler(spec, group.group_id), optuna.pruners.NopPruner()
    if storage is not None and name in {s.study_name for s in storage.get_all_studies()}:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler,
                                  pruner=pruner)
        if study.direction.name.lower() == direction and fits(study, space, spec.optuna.metric):
            for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                study.tell(trial.number, state=TrialState.FAIL)
            return study
        log.warning("optuna study %r no longer fits the spec; rebuilt from the store", name)
        optuna.delete_study(study_name=name, storage=storage)
    study = optuna.create_study(storage=storage, sampler=sampler, pruner=pruner,
                                study_name=name, direction=direction)
    for key, value in {"metric": spec.optuna.metric, "group_id": group.group_id,
                       "adstudy_study": spec.study}.items():
        study.set_user_attr(key, value)
    return study


@dataclasses.dataclass
class Slot:
    """A group's search and its budget in this submission."""

    group: Group
    study: GroupStudy
    remaining: int
    next_index: int
    known: set[str]  # cell ids stored or launched: a repeat is drawn again
    launched: int = 0
    used_up: bool = False


class GroupSearch:
    """Hands out the trials of every group, equal budget each (see the module doc)."""

    def __init__(self, spec: StudySpec, groups: list[Group], journal: OptunaJournal | None = None):
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # else a line per study and trial
        self.spec = spec
        self.journal = journal
        storage = None if journal is None else journal.storage
        names = {g.group_id: study_name(spec.study, cell_label(g.base, list(spec.axes)))
                 for g in groups}
        self.slots = [
            Slot(g, GroupStudy(spec, g, storage, names[g.group_id]),
                 max(0, spec.optuna.n_trials - g.spent),
                 g.next_index, {t.cell.cell_id for t in g.stored if t.status != "failed"})
            for g in groups
        ]
        self.routes: dict[str, tuple[Slot, str]] = {}
        self.tags = {"tuned_axes": ",".join(tuned_fields(spec)),
                     "tune_metric": spec.optuna.metric}

    @property
    def launched(self) -> int:
        return sum(s.launched for s in self.slots)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """The config of the next trial (one cell and its group's tags), for a group with
        the fewest launched; None when every group's budget or space is used up."""
        while True:
            open_slots = [s for s in self.slots if s.remaining > 0 and not s.used_up]
            if not open_slots:
                return None
            slot = min(open_slots, key=lambda s: s.launched)
            config = self._draw(slot, trial_id)
            if config is not None:
                return config
            slot.used_up = True

    def _draw(self, slot: Slot, trial_id: str) -> dict[str, Any] | None:
        for attempt in range(MAX_REDRAWS):
            key = trial_id if attempt == 0 else f"{trial_id}~{attempt}"
            cell = tuned_cell(slot.group.base, self.spec, slot.study.ask(key))
            if cell.cell_id in slot.known:  # a repeat: told as failed, ignored by samplers
                slot.study.tell(key, None, failed=True)
                continue
            slot.known.add(cell.cell_id)
            slot.study.asked[key].set_user_attr("cell_id", cell.cell_id)
            slot.study.asked[key].set_user_attr("group_trial", slot.next_index)
            slot.remaining -= 1
            slot.launched += 1
            slot.next_index += 1
            self.routes[trial_id] = (slot, key)
            tags = self.tags | {"group_id": slot.group.group_id,
                                "group_trial": slot.next_index - 1}
            return {"cells": [cell.to_dict()], "tags": tags}
        return None

    def complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Tells the trial's group what it found: only the selection metric reaches Optuna."""
        slot, key = self.routes.pop(trial_id, (None, None))
        if slot is None:
            return
        failed = error or (result or {}).get("status") == "failed"  # a crash: nothing learnt
        value = None if failed else selection_value(result, self.spec.optuna.metric)
        slot.study.tell(key, value, failed=failed)
        if self.journal is not None:
            self.journal.sync()  # an object store's copy of the journal, after each trial


def selection_value(result: dict | None, metric: str) -> float | None:
    """The selection metric of a complete trial's final record, else None."""
    if not result or result.get("kind") != "final" or result.get("status") != "complete":
        return None
    value = result.get(metric)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None
