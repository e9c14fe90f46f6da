"""One Optuna search per group of a tuned study, each with the same budget.

Every group (study.tuned_groups) gets its own Optuna study (its own seeded sampler), asked
and told directly (as Ray Tune's OptunaSearch does it). ``GroupSearch`` hands out the
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
    """One group's Optuna study, warm-started from the group's stored trials."""

    def __init__(self, spec: StudySpec, group: Group):
        self.space = optuna_space(spec)
        self.study = optuna.create_study(
            sampler=make_sampler(spec, group.group_id), pruner=optuna.pruners.NopPruner(),
            study_name=group.group_id,
            direction="minimize" if spec.optuna.mode == "min" else "maximize")
        self.asked: dict[str, optuna.trial.Trial] = {}
        for trial in group.stored:
            params = params_of(trial.cell, spec)
            if params is None or trial.status == "failed":
                continue  # outside today's space, or a crash: nothing to learn from
            # diverged or stopped early (no value): a bad point, told as pruned
            state = TrialState.COMPLETE if trial.value is not None else TrialState.PRUNED
            self.study.add_trial(optuna.trial.create_trial(
                state=state, value=trial.value, params=params, distributions=self.space))

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

    def __init__(self, spec: StudySpec, groups: list[Group]):
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # else a line per study and trial
        self.spec = spec
        self.slots = [
            Slot(g, GroupStudy(spec, g), max(0, spec.optuna.n_trials - g.spent),
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


def selection_value(result: dict | None, metric: str) -> float | None:
    """The selection metric of a complete trial's final record, else None."""
    if not result or result.get("kind") != "final" or result.get("status") != "complete":
        return None
    value = result.get(metric)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None
