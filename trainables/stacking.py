"""Which cells can train as one vmapped stack (trainables.train_stack). No torch here:
the driver packs cells into trials by the same key (study.packing, study.cost).

Stackable cells differ only in seed, lr, loss (each row of a stack has its own
objective: trainables.train_stack) and normal class (on the one-class protocol the class
only picks the training images and the test labels: trainables.stack_data). The model
has no batch norm and no sampling (cae, mlp_ae); every loss is deterministic and
stateless; the data does not depend on the seed; the score is the common yardstick
(recon_mse).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from trainables.cell import Cell
from trainables.datasets import image_shape

STACKED_MODELS = ("cae", "mlp_ae")
STACKED_LOSSES = ("mse", "mae", "l1", "msle", "lmse", "lamp")
# On a CPU a stack pays while per-op overhead bounds a step: digits (8x8) trained 1.7x
# faster stacked; on 28x28 MNIST the convolutions bound it and a stack of 10 was ~10%
# slower than its cells one by one (bench/RESULTS.md, issue 21). On a GPU stacks pay at
# any size. Between 64 and 784 pixels nothing was measured: 256 is the line drawn.
CPU_STACK_MAX_PIXELS = 256
PER_CELL_FIELDS = ("seed", "lr", "loss", "loss_params", "normal_class")


def stack_key(cell: Cell) -> tuple | None:
    """Cells with equal keys can train as one stack; None: this cell trains alone."""
    if cell.model not in STACKED_MODELS or cell.loss not in STACKED_LOSSES:
        return None
    if cell.protocol != "one_class" or cell.max_train or cell.max_test:
        return None  # the training images would depend on the seed
    shared = {k: v for k, v in cell.to_dict().items() if k not in PER_CELL_FIELDS}
    return tuple(sorted(shared.items()))


def one_stack(cells: Sequence[Cell]) -> bool:
    """Every cell has the same stack key (so a stackable loss) and the common yardstick
    as its score."""
    keys = {stack_key(c) for c in cells}
    return None not in keys and len(keys) == 1 and all(c.score == "recon_mse" for c in cells)


def can_stack(cells: Sequence[Cell]) -> bool:
    """More than one cell, and they make one stack (what a trial trains stacked)."""
    return len(cells) > 1 and one_stack(cells)


def small_enough_for_cpu(shape: Sequence[int]) -> bool:
    """Whether images of this [C, H, W] shape train faster stacked on a CPU: at most
    CPU_STACK_MAX_PIXELS values (study.cost counts stacks by the same rule)."""
    return math.prod(shape) <= CPU_STACK_MAX_PIXELS


def stack_pays_on_cpu(cell: Cell, data_root: str) -> bool:
    """Whether a CPU trains cells like this one faster stacked (small_enough_for_cpu;
    stacked when the shape cannot be known here)."""
    shape = image_shape(cell, os.path.expanduser(data_root))
    return shape is None or small_enough_for_cpu(shape)
