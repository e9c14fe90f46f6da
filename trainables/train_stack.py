"""Many cells in one model: K cells that share data and model train at once.

Each parameter is one stacked leaf tensor [K, ...] per learning rate (one optimizer of
trainables.optimizers, with a param group per lr, updates every row as K sequential runs
would: the updates are elementwise); every step runs one vmapped forward/backward
(torch.func.functional_call + vmap), so the Python and kernel-launch overhead of a step,
and of the optimizer, is paid once for K cells, not K times. Each cell keeps
its own seed: its own initial weights and its own batch order, and its own loss (the rows
of each loss get it through one vmapped call, so a loss that reads its batch, such as a
batch maximum, reads the cell's own batch). Per-cell results equal
sequential training up to float rounding (tests/test_train_stack.py). Which cells stack:
trainables.stacking.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.func import functional_call, vmap

from trainables.assemble import build_loss, build_model
from trainables.cell import Cell
from trainables.curves import curve_subset, on_curve
from trainables.metrics import detection_metrics, test_figures
from trainables.models import Output
from trainables.optimizers import build_optimizer
from trainables.stack_data import StackData, compatible, load_tasks
from trainables.stacking import one_stack
from trainables.train import EVAL_BATCH, device_name, final_record, pick_device, scored_epoch
from trainables.validation import val_figures


class Stack:
    """K models' parameters as stacked tensors, one optimizer, and the vmapped step.

    Cells of one lr share a block: one leaf tensor [K_lr, ...] per parameter, so a step
    stacks nothing when every cell has the same lr and concatenates one block per lr
    otherwise; the optimizer has one param group per block (its lr), which updates each
    row exactly as K separate optimizers would (every update is elementwise). Rows are in
    block order: ``rows[r]`` is the index of the cell in row r (a tensor on the device).
    """

    def __init__(self, cells: Sequence[Cell], image_shape: tuple, device: torch.device):
        first = cells[0]
        models = []
        for cell in cells:
            torch.manual_seed(cell.seed)  # the same initial weights as a sequential run
            models.append(build_model(first, image_shape))
        if any(True for _ in models[0].buffers()):
            raise ValueError(f"model {first.model!r} has buffers (batch norm): cannot stack")
        self.names = [name for name, _ in models[0].named_parameters()]
        lrs = list(dict.fromkeys(c.lr for c in cells))
        members = [[k for k, c in enumerate(cells) if c.lr == lr] for lr in lrs]
        self.rows = torch.tensor([k for block in members for k in block], device=device)
        self.row_of = self.rows.argsort()  # cell index -> its row
        self.blocks = [
            [torch.stack([dict(models[k].named_parameters())[name].detach() for k in block])
             .to(device).requires_grad_(True) for name in self.names]
            for block in members
        ]
        self.skeleton = copy.deepcopy(models[0]).to("meta")
        groups = [{"params": leaves, "lr": lr}
                  for leaves, lr in zip(self.blocks, lrs, strict=True)]
        self.optimizer, self.schedule = build_optimizer(
            first.optimizer, groups, first.lr, first.params("optimizer")
        )
        # one objective per loss (stacked losses have no trainer state), with its rows
        by_loss: dict[tuple, list[int]] = {}
        for r, k in enumerate(self.rows.tolist()):
            by_loss.setdefault((cells[k].loss, cells[k].loss_params), []).append(r)
        firsts = {(c.loss, c.loss_params): c for c in reversed(cells)}
        self.losses = [(build_loss(firsts[key])[0],
                        None if len(by_loss) == 1 else torch.tensor(rows, device=device))
                       for key, rows in by_loss.items()]

    def params(self) -> dict[str, torch.Tensor]:
        """Every parameter as one tensor [K, ...], rows in ``rows`` order."""
        if len(self.blocks) == 1:
            return dict(zip(self.names, self.blocks[0], strict=True))
        return {name: torch.cat([block[i] for block in self.blocks])
                for i, name in enumerate(self.names)}

    def by_cell(self, values: torch.Tensor, cells: Sequence[int]) -> torch.Tensor:
        """Rows of ``values`` (in row order) for the cells at these indices, in that order."""
        return values[self.row_of[list(cells)]]

    def forward(self, params: dict[str, torch.Tensor], x: torch.Tensor):
        out = functional_call(self.skeleton, params, (x,))
        return out.recon, out.z

    def step_values(self, params: dict[str, torch.Tensor], batch: torch.Tensor):
        """Every row's per-sample objective and reconstruction MSE, [K, b] each, for the
        rows' own batches ``batch`` [K, b, C, H, W]."""
        recon, z = vmap(self.forward)(params, batch)
        mse = ((recon - batch) ** 2).flatten(2).mean(dim=2)
        if len(self.losses) == 1:
            return vmap(per_sample_loss(self.losses[0][0]))(recon, z, batch), mse
        per_sample = torch.empty_like(mse)
        for loss_fn, rows in self.losses:
            per_sample = per_sample.index_put(
                (rows,), vmap(per_sample_loss(loss_fn))(recon[rows], z[rows], batch[rows]))
        return per_sample, mse

    def grad_norms(self) -> torch.Tensor:
        """Every row's total gradient 2-norm, [K] (two ops a block, not one a cell)."""
        return torch.cat([
            torch.cat([leaf.grad.flatten(1) for leaf in block], dim=1).norm(dim=1)
            for block in self.blocks
        ])


def per_sample_loss(loss_fn):
    """A loss ``loss_fn(Output, x)`` as a function of (recon, z, x) tensors, for vmap."""
    return lambda recon, z, x: loss_fn(Output(recon=recon, z=z), x)


def train_stack_epoch(
    stack: Stack, x: torch.Tensor, active: list[int], orders: torch.Tensor, batch_size: int,
    mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One epoch of every cell of the stack (``orders``: each cell's image order, [K, n]
    in cell order; ``mask``: 1 for its real images, 0 for the copies padding a shorter
    class's last batch (trainables.stack_data), None: none); per-cell sums as tensors
    [len(active)] for the ``active`` cells.

    A diverged cell stays in the stack: its NaNs stay in its own rows (the cells share no
    weights, and the summed objective passes each cell a gradient of its own terms only).
    """
    n = orders.shape[1]
    orders = orders[stack.rows]
    weights = None if mask is None else mask.to(x.device)[stack.rows]
    k = len(stack.rows)
    loss_sum = torch.zeros(k, device=x.device)
    mse_sum = torch.zeros(k, device=x.device)
    grad_sum = torch.zeros(k, device=x.device)
    steps = 0
    for start in range(0, n, batch_size):
        batch = x[orders[:, start : start + batch_size]]  # [K, b, C, H, W]
        real = None if weights is None else weights[:, start : start + batch_size]
        objective, per_sample, mse = real_objective(
            *stack.step_values(stack.params(), batch), real)
        stack.optimizer.zero_grad(set_to_none=True)
        objective.sum().backward()  # cells are independent: grads stay per cell
        grad_sum += stack.grad_norms()
        stack.optimizer.step()
        loss_sum += per_sample.detach().sum(dim=1)
        mse_sum += mse.detach().sum(dim=1)
        steps += 1
    if stack.schedule is not None:
        stack.schedule.step()
    return epoch_means(stack, active, (loss_sum, mse_sum, grad_sum), n, weights, steps)


def real_objective(per_sample: torch.Tensor, mse: torch.Tensor, real: torch.Tensor | None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each row's objective for a step ([K]: the mean of its per-sample values over its
    real images, ``real`` [K, b] 1 for real, 0 for padding copies; None: all real) and
    the per-sample values and MSEs with the padding's zeroed."""
    if real is None:
        return per_sample.mean(dim=1), per_sample, mse
    return (per_sample * real).sum(dim=1) / real.sum(dim=1), per_sample * real, mse * real


def epoch_means(stack: Stack, active: list[int], sums: Sequence[torch.Tensor], n: int,
                weights: torch.Tensor | None, steps: int) -> dict[str, torch.Tensor]:
    """The active cells' epoch figures from the rows' sums (loss, MSE, gradient norm):
    loss and MSE per real image (``n`` a row when ``weights`` is None), the gradient norm
    per step."""
    loss_sum, mse_sum, grad_sum = sums
    count = n if weights is None else stack.by_cell(weights.sum(dim=1), active)
    return {"train_loss": stack.by_cell(loss_sum, active) / count,
            "train_mse": stack.by_cell(mse_sum, active) / count,
            "grad_norm": stack.by_cell(grad_sum, active) / steps}


@torch.no_grad()
def stacked_errors(stack: Stack, active: list[int], test_x: torch.Tensor) -> np.ndarray:
    """Per-cell, per-image reconstruction MSE on the test set: [len(active), M]."""
    params = {name: stack.by_cell(p, active) for name, p in stack.params().items()}
    parts = []
    for chunk in test_x.split(EVAL_BATCH):
        recon, _ = vmap(stack.forward, in_dims=(0, None))(params, chunk)
        parts.append(((recon - chunk) ** 2).flatten(2).mean(dim=2))
    return torch.cat(parts, dim=1).double().cpu().numpy()


def train_stack(
    cells: Sequence[Cell], data_root: str = "~/.cache/adstudy", device: str = "auto",
    score_every: int = 1, curve_images: int = 0,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Trains stackable cells together; yields (cell_id, record) as train_cell would:
    every cell's epoch records and then its final record (score: recon_mse only).
    Cells whose classes' data cannot share a stack (trainables.stack_data.compatible)
    train as several stacks, one after another.
    ``score_every``, ``curve_images``: as train_cell's (test figures every k-th and the
    last epoch; on a fixed subsample of the test images: trainables.curves).

    Raises:
        ValueError: if the cells do not share one stack key or need another score.
    """
    if not one_stack(cells):
        raise ValueError("cells differ in more than seed, lr, loss and normal class, or "
                         "cannot be stacked")
    tasks = load_tasks(cells, data_root)
    for group in compatible(cells, tasks):
        yield from train_one_stack(group, tasks, pick_device(device), score_every,
                                   curve_images)


def train_one_stack(cells: Sequence[Cell], tasks: dict, dev: torch.device, score_every: int,
                    curve_images: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """train_stack's work for cells that share the test images and the steps an epoch."""
    started = time.perf_counter()
    data = StackData.build(cells, tasks, dev)
    curve = curve_subset(len(data.test_x), curve_images)
    curve_x = on_curve(data.test_x, curve)
    curve_y = [on_curve(labels, curve) for labels in data.test_y]
    stack = Stack(cells, tuple(data.x.shape[1:]), dev)
    generators = [torch.Generator().manual_seed(c.seed) for c in cells]
    active = list(range(len(cells)))
    last: list[dict[str, float]] = [{} for _ in cells]
    train_seconds = 0.0
    # the last epoch's (always scored) errors and checks: the final record reuses them,
    # the errors only when the curve is on every test image
    errors, checks = None, None
    for epoch in range(1, cells[0].epochs + 1):
        tick = time.perf_counter()
        # every cell draws its order (a diverged one too: its rows still train, unread)
        orders, mask = data.orders(generators, cells[0].batch_size)
        sums = train_stack_epoch(stack, data.x, active, orders.to(dev), cells[0].batch_size,
                                 mask)
        train_seconds += time.perf_counter() - tick
        rows = epoch_rows(sums, active)
        for k, row in rows.items():
            if not math.isfinite(row["train_loss"]):
                error = f"non-finite train loss ({row['train_loss']}) at epoch {epoch}"
                yield cells[k].cell_id, final_record("diverged", error, last[k], epoch - 1)
        active = [k for k in active if math.isfinite(rows[k]["train_loss"])]
        if not active:
            return
        scored = scored_epoch(epoch, cells[0].epochs, score_every)
        errors = stacked_errors(stack, active, curve_x) if scored else None
        checks = validation(stack, active, data.held)
        wall = time.perf_counter() - started
        for j, k in enumerate(active):
            last[k] = rows[k]
            figures = (test_figures(errors[j], curve_y[k]) if scored else {}) | checks[j]
            yield cells[k].cell_id, {"kind": "epoch", "epoch": epoch, **rows[k], **figures,
                                     "wall_s": wall}
    if errors is None or curve is not None:  # no epoch ran (epochs: 0), or a subsample
        errors = stacked_errors(stack, active, data.test_x)
    if checks is None:
        checks = validation(stack, active, data.held)
    per_cell_rate = np.mean(data.counts) * cells[0].epochs / max(train_seconds, 1e-9)
    for j, k in enumerate(active):
        record = final_record("complete", "", last[k], cells[0].epochs)
        record |= detection_metrics(data.test_y[k], errors[j]) | checks[j]
        record |= {"scores": errors[j], "labels": data.test_y[k], "device": device_name(dev),
                   "train_samples_per_s": float(per_cell_rate),
                   "wall_s": time.perf_counter() - started}
        yield cells[k].cell_id, record


def validation(stack: Stack, active: list[int], held: list[dict[str, torch.Tensor]]
               ) -> list[dict[str, float]]:
    """Each active cell's validation figures (trainables.validation, recon-MSE score) on
    its class's held-out split (``held``, per cell); {} for a cell without one."""
    figures: dict[int, dict[str, float]] = {}
    by_split: dict[int, list[int]] = {}
    for k in active:
        by_split.setdefault(id(held[k]), []).append(k)
    for members in by_split.values():
        split = held[members[0]]
        if "val_x" not in split:
            figures |= {k: {} for k in members}
            continue
        normal = stacked_errors(stack, members, split["val_x"])
        anomalies = (stacked_errors(stack, members, split["val_anomalies"])
                     if "val_anomalies" in split else [None] * len(members))
        figures |= {k: val_figures(normal[j], normal[j], anomalies[j])
                    for j, k in enumerate(members)}
    return [figures[k] for k in active]


def epoch_rows(sums: dict[str, torch.Tensor], active: list[int]) -> dict[int, dict[str, float]]:
    """Per active cell (by index): its epoch figures as floats (one device sync)."""
    values = {name: t.cpu().tolist() for name, t in sums.items()}
    return {k: {name: values[name][j] for name in values} for j, k in enumerate(active)}
