"""The plan of a tuned study (``search: optuna``): its groups (study.tuned_groups) and
what the store holds of each.

The store is the record: a submission reads each group's stored rows, counts the trials
already spent (complete, diverged or pruned; a failed trial is given back) and runs only
what is left of its budget, going on in the group's Optuna study as the study's journal
holds it (study.optuna_store; stored rows it lacks are added to it). ``TunedPlan`` is the
strategy study.runner is given: no fixed packs of cells, a GroupSearch (study.group_search)
that suggests each trial, and ASHA settings per group. No ray import here.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import pyarrow.dataset as pads

from study.cell import Cell
from study.errors import SpecError
from study.search_options import EPOCH_METRICS
from study.spec import StudySpec
from study.store import ResultsStore
from study.tuned_groups import (
    Group,
    StoredTrial,
    base_cells,
    encode,
    group_id,
    probe_cells,
    tuned_cell,
    tuned_fields,
)

if TYPE_CHECKING:  # optuna is loaded only when the search runs
    from study.group_search import GroupSearch

MAX_GROUPS_WITHOUT_CONFIRM = 10_000


@dataclasses.dataclass(frozen=True)
class TunedPlan:
    """What a tuned submission will do, decided before Ray starts (study.plan.Plan)."""

    spec: StudySpec
    groups: list[Group]
    n_trials: int
    store: ResultsStore | None = None  # where the Optuna journal lives (None: in memory)
    unreadable_means = "its trial is given back to its group's budget"

    @property
    def budget(self) -> int:
        """Trials to run: what is left of every group's budget."""
        return sum(max(0, self.n_trials - g.spent) for g in self.groups)

    @property
    def total(self) -> int:
        return len(self.groups) * self.n_trials

    @property
    def stored(self) -> int:
        return sum(min(g.spent, self.n_trials) for g in self.groups)

    def cells_to_check(self) -> list[Cell]:
        """Cells trying every choice and both ends of every range, in every group."""
        return probe_cells(self.spec, [g.base for g in self.groups])

    def describe(self) -> str:
        return (f"{len(self.groups)} groups x {self.n_trials} trials = {self.total} trials in "
                f"the study, {self.stored} stored, {self.budget} to run")

    @property
    def nothing_left(self) -> str:
        return f"every group has its {self.n_trials} trials stored"

    def packs(self, slots: int) -> None:
        """No fixed trials: the search suggests each one (one cell a trial, whose epochs
        ASHA reads as they end)."""
        return None

    def search(self) -> GroupSearch:
        from study.group_search import GroupSearch
        from study.optuna_store import OptunaJournal

        journal = None if self.store is None else OptunaJournal(self.store)
        return GroupSearch(self.spec, self.groups, journal)

    def asha(self) -> dict[str, Any] | None:
        """ASHA's settings for each group (None: no early stopping). Epochs are Tune's
        iterations; max_t is one more than any trial's epochs (the final record)."""
        asha = self.spec.optuna.asha
        if asha is None:
            return None
        tuned = [max(a.values) for a in self.spec.tune if a.field == "epochs"]
        epochs = max([g.base.epochs for g in self.groups] + tuned)
        return {"metric": asha.metric, "mode": EPOCH_METRICS[asha.metric][0],
                "grace_period": asha.grace_period,
                "reduction_factor": asha.reduction_factor, "max_t": epochs + 1}


def plan_tuned(spec: StudySpec, store: ResultsStore, yes: bool = False) -> TunedPlan:
    """The groups of a tuned study with their stored trials (reads the store, writes
    nothing; study.validate checks ``cells_to_check`` before it runs).

    Raises:
        SpecError: for too many groups without ``yes``.
    """
    bases = base_cells(spec)
    if len(bases) > MAX_GROUPS_WITHOUT_CONFIRM and not yes:
        raise SpecError(f"the study has {len(bases):,} groups (over "
                        f"{MAX_GROUPS_WITHOUT_CONFIRM:,}); pass --yes to run it anyway")
    tuned = tuned_fields(spec)
    stored = stored_trials(store, spec.optuna.metric)
    groups = []
    for base in bases:
        gid = group_id(base, tuned)
        rows = sorted(stored.get(gid, []), key=lambda t: t.group_trial)
        groups.append(Group(gid, base, tuple(rows)))
    return TunedPlan(spec, groups, spec.optuna.n_trials, store)


def stored_trials(store: ResultsStore, metric: str) -> dict[str, list[StoredTrial]]:
    """group_id -> the stored rows of that group (rows of grid cells are left out). A
    trials file that cannot be read is left out (its trial is given back to the budget)
    and named in ``store.unreadable`` (ResultsStore.read_trials)."""
    found: dict[str, list[StoredTrial]] = {}
    for row in store.read_trials(where=pads.field("group_id").is_valid()).to_pylist():
        value = row.get(metric)
        usable = row["status"] == "complete" and value is not None and math.isfinite(value)
        found.setdefault(row["group_id"], []).append(StoredTrial(
            cell=Cell.from_dict({k: v for k, v in row.items() if v is not None}),
            status=row["status"], value=float(value) if usable else None,
            group_trial=int(row["group_trial"] or 0),
        ))
    return found


def describe_lines(spec: StudySpec) -> list[str]:
    """`adstudy describe` lines for a tuned study: the tune axes and the budget."""
    lines = []
    for axis in spec.tune:
        shown = ", ".join(str(encode(axis, v)) for v in axis.values)
        lines.append(f"  {'tune':8s}{axis.field:14s}{axis.kind} [{shown}]")
    o = spec.optuna
    groups = len(base_cells(spec))
    lines.append(f"  search: optuna, {o.sampler} sampler, {groups} groups x {o.n_trials} trials = "
                 f"{groups * o.n_trials} trials; selected on {o.metric} ({o.mode}) of a "
                 f"{o.val_fraction:g} validation split; labels allowed: {o.labels}"
                 + (f"; ASHA on {o.asha.metric} after {o.asha.grace_period} epochs"
                    if o.asha else ""))
    return lines


def estimate_cells(spec: StudySpec) -> list[Cell]:
    """Cells standing for a tuned study's trials in the cost estimate: each group n_trials
    times, at the middle of every range and the first choice."""
    params = {}
    for axis in spec.tune:
        low, high = axis.values[0], axis.values[-1]
        middle = math.sqrt(low * high) if "log" in axis.kind else (low + high) / 2
        params[axis.field] = encode(axis, low) if axis.kind == "choice" else middle
    cells = [tuned_cell(base, spec, params) for base in base_cells(spec)]
    return cells * spec.optuna.n_trials
