"""The plan of a submission: what will run, decided before Ray starts (no Ray and no
torch here; it only reads the store).

``make_plan`` expands the study and subtracts what the store holds; ``cells_to_check``
are what study.validate must pass before any of it runs. A grid
study (``search: grid``) plans every cell not stored, in packs of cells per trial
(study.packing); a tuned study (``search: optuna``, study/tuned_plan.py) plans what is left
of each group's budget, handed out one trial at a time by its search. Either is a
``Plan``, the strategy study.runner is given.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

from study.cell import Cell
from study.errors import SpecError
from study.grid import count, expand
from study.legacy_params import refuse_unnormalised
from study.packing import auto_pack_size, pack_cells
from study.schema import SETTLED
from study.spec import StudySpec
from study.store import ResultsStore
from study.tuned_plan import plan_tuned

if TYPE_CHECKING:  # optuna is loaded only when a tuned study runs
    from study.group_search import GroupSearch

MAX_CELLS_WITHOUT_CONFIRM = 100_000


class Plan(Protocol):
    """What the runner is given (GridPlan or tuned_plan.TunedPlan)."""

    unreadable_means: str  # what becomes of a stored file that cannot be read

    @property
    def budget(self) -> int:
        """Cells (grid) or trials (tuned) to run."""

    @property
    def total(self) -> int:
        """Cells (grid) or trials (tuned) in the whole study."""

    @property
    def stored(self) -> int:
        """Of ``total``, those stored as settled (complete, diverged or pruned)."""

    def cells_to_check(self) -> list[Cell]:
        """The cells study.validate must pass before the plan runs."""

    def describe(self) -> str:
        """One line: the study's size, what is stored, what will run."""

    @property
    def nothing_left(self) -> str:
        """Why nothing runs, when the budget is 0."""

    def packs(self, slots: int) -> list[list[Cell]] | None:
        """The trials, each a pack of cells, for a cluster of ``slots`` trial slots; None
        when the plan hands trials out one by one (``search``)."""

    def search(self) -> GroupSearch | None:
        """Hands out the trials when ``packs`` is None."""

    def asha(self) -> dict[str, Any] | None:
        """Early-stopping settings per group (AsyncHyperBandScheduler's), or None."""


@dataclasses.dataclass(frozen=True)
class GridPlan:
    """Every cell of the grid the store does not hold as settled, in packs of cells."""

    cells: list[Cell]
    todo: list[Cell]
    statuses: dict[str, str]  # cell id -> stored status
    cells_per_trial: int = 0  # run.cells_per_trial: 0 = auto
    unreadable_means = "its cell runs again"
    nothing_left = "every cell is stored"

    @property
    def budget(self) -> int:
        return len(self.todo)

    @property
    def total(self) -> int:
        return len(self.cells)

    @property
    def stored(self) -> int:
        return len(self.cells) - len(self.todo)

    def cells_to_check(self) -> list[Cell]:
        return self.todo  # stored cells ran: their fields passed then

    def describe(self) -> str:
        retried = sum(1 for c in self.todo if c.cell_id in self.statuses)
        text = f"{len(self.cells)} cells in the study, {self.stored} stored"
        text += f", {len(self.todo)} to run"
        return text + (f" ({retried} failed before, retried)" if retried else "")

    def packs(self, slots: int) -> list[list[Cell]]:
        size = self.cells_per_trial or auto_pack_size(len(self.todo), slots)
        return pack_cells(self.todo, size)

    def search(self) -> None:
        return None

    def asha(self) -> None:
        return None


def make_plan(spec: StudySpec, store: ResultsStore, yes: bool = False) -> Plan:
    """The study's plan (grid or tuned); see plan_grid. A store holding cells stored
    before parameters were normalised is refused (study/legacy_params.py)."""
    refuse_unnormalised(store)
    if spec.search == "optuna":
        return plan_tuned(spec, store, yes)
    return plan_grid(spec, store, yes)


def plan_grid(spec: StudySpec, store: ResultsStore, yes: bool = False) -> GridPlan:
    """Expands the grid and subtracts the stored cells (reads the store, writes nothing).

    Raises:
        SpecError: for a grid too large without ``yes``.
    """
    if count(spec) > MAX_CELLS_WITHOUT_CONFIRM and not yes:
        raise SpecError(
            f"the grid has {count(spec):,} cells (over {MAX_CELLS_WITHOUT_CONFIRM:,}); "
            "pass --yes to run it anyway"
        )
    cells = expand(spec)
    stored = store.stored_statuses()
    todo = [c for c in cells if stored.get(c.cell_id) not in SETTLED]
    return GridPlan(cells, todo, stored, spec.run.cells_per_trial)
