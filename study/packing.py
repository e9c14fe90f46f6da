"""Packing cells into Ray trials: a pure function, like grid expansion.

Cells that can train as one vmapped stack (trainables.stacking: same dataset and model;
differing in seed, lr, loss and normal class) are packed together; the rest are packed in
submission order and train one after another inside their trial. Either way, a trial's
start-up cost is paid once per pack. (A tuned study's groups, study/tuned_plan.py, are
another thing: the scientific combinations each Optuna search tunes.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from study.cell import Cell
from trainables.stacking import stack_key


def auto_pack_size(n_cells: int, slots: int, cap: int = 64) -> int:
    """Cells per trial when the spec says 0 (auto): about four trials per slot, so the
    slots stay busy to the end, and never more than ``cap`` cells in one trial."""
    return max(1, min(cap, math.ceil(n_cells / max(1, 4 * slots))))


def pack_cells(cells: Sequence[Cell], size: int) -> list[list[Cell]]:
    """Packs of at most ``size`` cells; cells with one stack key share packs.

    Returns packs in a stable order: stackable families first (in first-seen order),
    then the other cells, each family chunked into near-equal packs.
    """
    if size <= 1:
        return [[cell] for cell in cells]
    families: dict[object, list[Cell]] = {}
    loose: list[Cell] = []
    for cell in cells:
        key = stack_key(cell)
        if key is None:
            loose.append(cell)
        else:
            families.setdefault(key, []).append(cell)
    packs: list[list[Cell]] = []
    for members in [*families.values(), loose]:
        if members:
            n_packs = math.ceil(len(members) / size)
            packs += [members[i::n_packs] for i in range(n_packs)]
    return packs
