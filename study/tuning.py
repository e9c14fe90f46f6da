"""Tuned studies (``search: optuna``): groups, their search spaces, and what the store holds.

A group is one combination of the compare and vary axes (loss, model, dataset, normal
class, seed, ...): one Optuna study of ``optuna.n_trials`` trials over the tune axes, the
same budget for every group. Each trial is a cell (the group's fields plus the tuned
values) with its own cell id, stored like any cell plus its group_id, its index in the
group's search and the metric the search selects on.

The store is the record: a submission reads each group's stored rows, counts the trials
already spent (complete, diverged or pruned; a failed trial is given back), warm-starts the
group's search from them and runs only what is left of its budget. No ray import here
(study.tune_search holds the Ray Tune parts).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from study.cell import NAMED_FIELDS, Cell, canonical_json
from study.errors import SpecError
from study.grid import expand
from study.schema import TRIALS
from study.spec import StudySpec
from study.store import ResultsStore
from study.tunespec import TuneAxis

# Statuses that spend a trial of a group's budget; 'failed' (a crash, a lost node) does not.
SPENT = ("complete", "diverged", "pruned")
MAX_GROUPS_WITHOUT_CONFIRM = 10_000


@dataclasses.dataclass(frozen=True)
class StoredTrial:
    """A stored row of a group: its cell, status, selection value and index."""

    cell: Cell
    status: str
    value: float | None  # the selection metric; None unless complete and finite
    group_trial: int


@dataclasses.dataclass(frozen=True)
class Group:
    """One scientific combination and its stored trials."""

    group_id: str
    base: Cell  # the group's fields (tuned fields at their defaults until a trial sets them)
    stored: tuple[StoredTrial, ...] = ()

    @property
    def spent(self) -> int:
        return sum(1 for t in self.stored if t.status in SPENT)

    @property
    def next_index(self) -> int:
        return max((t.group_trial for t in self.stored), default=-1) + 1


@dataclasses.dataclass(frozen=True)
class TunedPlan:
    """What a tuned submission will do, decided before Ray starts."""

    groups: list[Group]
    n_trials: int

    @property
    def todo(self) -> int:
        return sum(max(0, self.n_trials - g.spent) for g in self.groups)

    def describe(self) -> str:
        total = len(self.groups) * self.n_trials
        stored = sum(min(g.spent, self.n_trials) for g in self.groups)
        return (f"{len(self.groups)} groups x {self.n_trials} trials = {total} trials in the "
                f"study, {stored} stored, {self.todo} to run")


def tuned_fields(spec: StudySpec) -> tuple[str, ...]:
    """The tuned axes, sorted (as stored in the ``tuned_axes`` column)."""
    return tuple(sorted(axis.field for axis in spec.tune))


def group_id(cell: Cell, tuned: Iterable[str]) -> str:
    """'g' + 11 hex digits of the hash of a cell's fields other than the tuned ones."""
    drop = {f for name in tuned for f in (name, f"{name}_params")}
    fields = {k: v for k, v in cell.to_dict().items() if k not in drop}
    return "g" + hashlib.sha256(canonical_json(fields).encode()).hexdigest()[:11]


def base_cells(spec: StudySpec) -> list[Cell]:
    """One cell per group: the grid of compare x vary, with the validation split set."""
    return [dataclasses.replace(c, val_fraction=spec.optuna.val_fraction) for c in expand(spec)]


def encode(axis: TuneAxis, value: Any) -> Any:
    """A choice as Optuna stores it: named values (name, params_json) as one string."""
    if axis.field in NAMED_FIELDS:
        name, params = value
        return name if params == "{}" else f"{name}{params}"
    return value


def tuned_cell(base: Cell, spec: StudySpec, params: dict[str, Any]) -> Cell:
    """The group's cell with the tuned values of one trial (Optuna's encoded params)."""
    values: dict[str, Any] = {}
    for axis in spec.tune:
        value = params[axis.field]
        if axis.kind == "choice":
            value = {encode(axis, v): v for v in axis.values}[value]
        if axis.field in NAMED_FIELDS:
            values[axis.field], values[f"{axis.field}_params"] = value
        else:
            values[axis.field] = int(value) if axis.kind.startswith("int") else value
    return dataclasses.replace(base, **values)


def params_of(cell: Cell, spec: StudySpec) -> dict[str, Any] | None:
    """A stored cell's tuned values as Optuna params; None when one lies outside the
    spec's current space (the space changed since the row was stored)."""
    params = {}
    for axis in spec.tune:
        value = getattr(cell, axis.field)
        if axis.field in NAMED_FIELDS:
            value = (value, getattr(cell, f"{axis.field}_params"))
        if axis.kind == "choice":
            if value not in axis.values:
                return None
            params[axis.field] = encode(axis, value)
        elif not axis.values[0] <= value <= axis.values[1]:
            return None
        else:
            params[axis.field] = value
    return params


def probe_cells(spec: StudySpec, bases: list[Cell]) -> list[Cell]:
    """Cells that try every choice and both ends of every range, for validate_cells."""
    cells = list(bases)
    for axis in spec.tune:
        for value in axis.values:
            params = {a.field: encode(a, a.values[0]) for a in spec.tune}
            params[axis.field] = encode(axis, value)
            cells += [tuned_cell(base, spec, params) for base in bases]
    return cells


def plan_tuned(spec: StudySpec, store: ResultsStore, yes: bool = False,
               local: bool = False) -> TunedPlan:
    """The groups of a tuned study with their stored trials; with ``local`` (trials run on
    this machine) the datasets' files are checked too (study.submit.plan).

    Raises:
        SpecError: for too many groups without ``yes`` or a cell no trainer could run.
    """
    from study.validate import validate_cells

    bases = base_cells(spec)
    if len(bases) > MAX_GROUPS_WITHOUT_CONFIRM and not yes:
        raise SpecError(f"the study has {len(bases):,} groups (over "
                        f"{MAX_GROUPS_WITHOUT_CONFIRM:,}); pass --yes to run it anyway")
    validate_cells(probe_cells(spec, bases), spec.run.data_root if local else None,
                   shape_root=spec.run.data_root)
    store.prepare()
    tuned = tuned_fields(spec)
    stored = stored_trials(store, spec.optuna.metric)
    groups = []
    for base in bases:
        gid = group_id(base, tuned)
        rows = sorted(stored.get(gid, []), key=lambda t: t.group_trial)
        groups.append(Group(gid, base, tuple(rows)))
    return TunedPlan(groups, spec.optuna.n_trials)


def stored_trials(store: ResultsStore, metric: str) -> dict[str, list[StoredTrial]]:
    """group_id -> the stored rows of that group (rows of grid cells are left out). A
    trials file that cannot be read is left out (its trial is given back to the budget)
    and named in ``store.unreadable``, as ResultsStore.stored_statuses does."""
    selector = pafs.FileSelector(store.table_dir("trials"), allow_not_found=True)
    files = sorted(i.path for i in store.fs.get_file_info(selector)
                   if i.path.endswith(".parquet"))
    found: dict[str, list[StoredTrial]] = {}
    for row in tuned_rows(store, files):
        value = row.get(metric)
        usable = row["status"] == "complete" and value is not None and math.isfinite(value)
        found.setdefault(row["group_id"], []).append(StoredTrial(
            cell=Cell.from_dict({k: v for k, v in row.items() if v is not None}),
            status=row["status"], value=float(value) if usable else None,
            group_trial=int(row["group_trial"] or 0),
        ))
    return found


def tuned_rows(store: ResultsStore, files: list[str]) -> list[dict[str, Any]]:
    """The rows with a group_id of the given trials files (one by one if one is bad)."""
    def read(paths: list[str]) -> list[dict[str, Any]]:
        data = pads.dataset(paths, schema=TRIALS, filesystem=store.fs, format="parquet")
        return data.to_table(filter=pads.field("group_id").is_valid()).to_pylist()

    if not files:
        return []
    try:
        return read(files)
    except (OSError, ValueError, pa.ArrowException):
        out = []
        for path in files:
            try:
                out += read([path])
            except (OSError, ValueError, pa.ArrowException) as err:
                store.unreadable = {**getattr(store, "unreadable", {}),
                                    path: str(err).splitlines()[0] if str(err) else
                                    type(err).__name__}
        return out


def sampler_seed(seed: int, gid: str) -> int:
    """Each group's sampler seed: the spec's seed and the group id, hashed."""
    return int(hashlib.sha256(f"{seed}:{gid}".encode()).hexdigest()[:8], 16)


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
