"""A stack's data across normal classes (trainables.stack_data): each cell draws its own
class's images in its own seeded order, and a shorter class's last batch is padded with
copies of that batch's first image, masked out."""

import numpy as np
import torch

from study.cell import Cell
from trainables.protocols import Task
from trainables.stack_data import StackData, compatible


def task(n_train: int, value: float, test: np.ndarray) -> Task:
    train = np.full((n_train, 1, 2, 2), value, np.float32)
    return Task(train_x=train, test_x=test, test_y=(test[:, 0, 0, 0] != value).astype(int))


def test_orders_draw_each_class_in_the_cells_own_order_and_pad_the_short_class():
    test = np.arange(4, dtype=np.float32).repeat(4).reshape(4, 1, 2, 2)
    tasks = {0: task(5, 0.0, test), 1: task(6, 1.0, test)}
    cells = [Cell(study="s", normal_class=c, seed=s, batch_size=4) for c in (0, 1) for s in (7,)]
    data = StackData.build(cells, tasks, torch.device("cpu"))
    orders, mask = data.orders([torch.Generator().manual_seed(7) for _ in cells], 4)
    assert orders.shape == (2, 6) and data.x.shape[0] == 11
    own = torch.randperm(5, generator=torch.Generator().manual_seed(7))
    assert orders[0, :5].tolist() == own.tolist()  # what a run of the cell alone draws
    assert orders[0, 5] == orders[0, 4]  # the last batch's first image, copied
    assert sorted(orders[1].tolist()) == list(range(5, 11))  # class 1's rows of the pool
    assert mask.tolist() == [[1, 1, 1, 1, 1, 0], [1] * 6]
    assert [labels.tolist() for labels in data.test_y] == [[0, 1, 1, 1], [1, 0, 1, 1]]


def test_equal_classes_need_no_mask_and_other_step_counts_stack_apart():
    test = np.zeros((3, 1, 2, 2), np.float32)
    tasks = {0: task(8, 0.0, test), 1: task(8, 1.0, test), 2: task(9, 2.0, test)}
    cells = [Cell(study="s", normal_class=c, batch_size=4) for c in (0, 1, 2)]
    data = StackData.build(cells[:2], tasks, torch.device("cpu"))
    assert data.orders([torch.Generator() for _ in range(2)], 4)[1] is None
    # 8 images: 2 steps of 4; 9 images: 3 steps
    assert [[c.normal_class for c in g] for g in compatible(cells, tasks)] == [[0, 1], [2]]
    other_test = {**tasks, 1: task(8, 1.0, test + 1)}  # other test images: apart too
    assert [[c.normal_class for c in g] for g in compatible(cells, other_test)] == [[0], [1], [2]]
