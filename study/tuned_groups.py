"""The groups of a tuned study (``search: optuna``) and the cells of their trials.

A group is one combination of the compare and vary axes (loss, model, dataset, normal
class, seed, ...): one Optuna study of ``optuna.n_trials`` trials over the tune axes, the
same budget for every group. Each trial is a cell (the group's fields plus the tuned
values) with its own cell id, stored like any cell plus its group_id, its index in the
group's search and the metric the search selects on. Pure functions and records: no
optuna, no ray, no store.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from typing import Any

from study.cell import NAMED_FIELDS, Cell, canonical_json, named_text
from study.grid import expand
from study.schema import SETTLED
from study.search_options import TuneAxis
from study.spec import StudySpec


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
        """Trials of the budget used up: settled rows (schema.SETTLED); failed ones are
        given back."""
        return sum(1 for t in self.stored if t.status in SETTLED)

    @property
    def next_index(self) -> int:
        return max((t.group_trial for t in self.stored), default=-1) + 1


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
    """A choice as Optuna stores it: named values (name, params_json) as their text."""
    return named_text(value) if axis.field in NAMED_FIELDS else value


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
    """Cells that try every choice and both ends of every range, for check_cells."""
    cells = list(bases)
    for axis in spec.tune:
        for value in axis.values:
            params = {a.field: encode(a, a.values[0]) for a in spec.tune}
            params[axis.field] = encode(axis, value)
            cells += [tuned_cell(base, spec, params) for base in bases]
    return cells


