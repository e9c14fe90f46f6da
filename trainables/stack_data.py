"""The data of a stack whose cells may have different normal classes (train_stack).

On the one-class protocol a cell's normal class only picks its images: every class's
test set is the whole test split (only the labels differ), and its training images are
that class's. So the cells of a stack share the test images, and their training images
are pooled in one tensor, each cell drawing its batches from its own class's rows in its
own seeded order, exactly as a run of the cell alone draws them. Cells stack only when
their classes give the same number of steps an epoch; a class with fewer images then has
a shorter last batch, padded with copies of that batch's first image and masked out of
every mean and sum (a copy leaves a batch maximum, which some losses read, as it was).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import numpy as np
import torch

from trainables.assemble import build_task
from trainables.cell import Cell
from trainables.protocols import Task


def load_tasks(cells: Sequence[Cell], data_root: str) -> dict[int, Task]:
    """Each normal class's task, loaded once."""
    tasks: dict[int, Task] = {}
    for cell in cells:
        if cell.normal_class not in tasks:
            tasks[cell.normal_class] = build_task(cell, data_root)
    return tasks


def compatible(cells: Sequence[Cell], tasks: dict[int, Task]) -> list[list[Cell]]:
    """The cells in groups that can share one stack: the same test images and the same
    number of steps an epoch (in first-seen order)."""
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        task = tasks[cell.normal_class]
        key = (math.ceil(len(task.train_x) / cell.batch_size), task.test_x.shape,
               hash(np.ascontiguousarray(task.test_x).tobytes()))
        groups.setdefault(key, []).append(cell)
    return list(groups.values())


@dataclasses.dataclass
class StackData:
    """Pooled training images, the shared test images, and each cell's part of both."""

    x: torch.Tensor  # every class's training images, one after another
    test_x: torch.Tensor
    test_y: list[np.ndarray]  # per cell: its class's labels of the test images
    held: list[dict[str, torch.Tensor]]  # per cell: its class's held-out split ({}: none)
    offsets: list[int]  # per cell: where its class's images start in x
    counts: list[int]  # per cell: how many training images its class has

    @classmethod
    def build(cls, cells: Sequence[Cell], tasks: dict[int, Task], dev: torch.device
              ) -> StackData:
        classes = list(dict.fromkeys(c.normal_class for c in cells))
        starts = np.cumsum([0] + [len(tasks[c].train_x) for c in classes])
        held = {c: {k: torch.tensor(getattr(tasks[c], k), device=dev)
                    for k in ("val_x", "val_anomalies") if getattr(tasks[c], k) is not None}
                for c in classes}
        first = tasks[classes[0]]
        return cls(
            x=torch.tensor(np.concatenate([tasks[c].train_x for c in classes]), device=dev),
            test_x=torch.tensor(first.test_x, device=dev),
            test_y=[tasks[c.normal_class].test_y for c in cells],
            held=[held[c.normal_class] for c in cells],
            offsets=[int(starts[classes.index(c.normal_class)]) for c in cells],
            counts=[len(tasks[c.normal_class].train_x) for c in cells],
        )

    def orders(self, generators: Sequence[torch.Generator], batch_size: int
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Each cell's image order for an epoch, [K, n] rows of x (n: the most images of a
        class), and the mask of real images (None when every class has n images)."""
        n = max(self.counts)
        rows = []
        for gen, offset, count in zip(generators, self.offsets, self.counts, strict=True):
            order = torch.randperm(count, generator=gen) + offset
            if count < n:  # pad its last batch with copies of that batch's first image
                first = order[(count - 1) // batch_size * batch_size]
                order = torch.cat([order, first.repeat(n - count)])
            rows.append(order)
        return torch.stack(rows), self.mask

    @functools.cached_property
    def mask(self) -> torch.Tensor | None:
        """1 for each cell's real images in its [n] order, 0 for the padding copies; None
        when every class has the most images, n."""
        n = max(self.counts)
        if all(count == n for count in self.counts):
            return None
        return torch.tensor([[1.0] * count + [0.0] * (n - count) for count in self.counts])
