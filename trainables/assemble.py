"""Assembly: a cell's task, model and objective, built in one place.

The trainer (trainables.train), the stacked trainer (trainables.train_stack), the loss
landscape (trainables.landscape) and the driver's pre-flight probe (study.probe,
study.checks) all build through these functions, so a loss sees the same trainer-supplied
keywords (trainables.losses.TRAINER_KEYWORDS) and state wherever it runs.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from trainables.cell import Cell
from trainables.datasets import load_dataset
from trainables.losses import LOSSES, loss_keywords
from trainables.models import MODELS
from trainables.optimizers import GroupOptimizer, build_optimizer
from trainables.preprocess import VALUE_RANGE, preprocess
from trainables.protocols import PROTOCOLS, Task
from trainables.svdd import LOSS_STATES, SvddState


@dataclasses.dataclass
class Training:
    """One cell's model, objective, optimizer and data, as built before the first step."""

    model: nn.Module
    loss_fn: Callable[..., torch.Tensor]
    optimizer: GroupOptimizer
    schedule: Any
    train_x: torch.Tensor
    test_x: torch.Tensor
    test_y: np.ndarray
    generator: torch.Generator
    state: SvddState | None = None  # trainer-owned loss state (iaead)
    batch_norm: bool = False  # the model normalises over the batch
    val_x: torch.Tensor | None = None  # the validation split (trainables.validation)
    val_anomalies: torch.Tensor | None = None


def build_task(cell: Cell, data_root: str) -> Task:
    """The dataset, split by the cell's protocol, capped by max_train/max_test, and
    preprocessed for the cell's model (a set used for both training and test, as in the
    contaminated protocol, stays one array)."""
    if cell.protocol not in PROTOCOLS:
        raise KeyError(f"unknown protocol {cell.protocol!r}; choose from {sorted(PROTOCOLS)}")
    if cell.model not in MODELS:
        raise KeyError(f"unknown model {cell.model!r}; choose from {sorted(MODELS)}")
    images = load_dataset(cell.dataset, data_root, cell.params("dataset"))
    task = PROTOCOLS[cell.protocol].build(
        images,
        normal_class=cell.normal_class,
        seed=cell.seed,
        contamination=cell.contamination,
        max_train=cell.max_train,
        max_test=cell.max_test,
        val_fraction=cell.val_fraction,
    )
    train_x = preprocess(cell.model, task.train_x)
    test_x = train_x if task.test_x is task.train_x else preprocess(cell.model, task.test_x)
    held = {k: preprocess(cell.model, getattr(task, k))
            for k in ("val_x", "val_anomalies") if getattr(task, k) is not None}
    return dataclasses.replace(task, train_x=train_x, test_x=test_x, **held)


def build_model(cell: Cell, image_shape: tuple[int, ...]) -> nn.Module:
    """The cell's model for preprocessed images of ``image_shape`` [C, H, W], with torch's
    current random state (callers seed it)."""
    if cell.model not in MODELS:
        raise KeyError(f"unknown model {cell.model!r}; choose from {sorted(MODELS)}")
    return MODELS[cell.model](tuple(image_shape), cell.latent_dim, **cell.params("model"))


def build_loss(cell: Cell, stateful: bool = True) -> tuple[Callable, SvddState | None]:
    """The cell's per-sample objective ``loss(out, target)`` and its trainer-owned state.

    Args:
        stateful: give a loss with state (iaead) its state; False measures such a loss on
            its reconstruction term (the landscape: the state is not saved with weights).
    Raises:
        KeyError: for an unknown loss; ValueError for a state parameter out of range.
    """
    if cell.loss not in LOSSES:
        raise KeyError(f"unknown loss {cell.loss!r}; choose from {sorted(LOSSES)}")
    params = cell.params("loss")
    state = None
    if stateful and cell.loss in LOSS_STATES:
        state = LOSS_STATES[cell.loss](**params)
    supplied = {"value_range": VALUE_RANGE[cell.model], "state": state}
    params |= {k: supplied[k] for k in loss_keywords(cell.loss)}
    return functools.partial(LOSSES[cell.loss], **params), state


def build_training(cell: Cell, task: Task, device: torch.device) -> Training:
    """Model (seeded by the cell), objective, optimizer and the task's tensors on ``device``."""
    torch.manual_seed(cell.seed)
    model = build_model(cell, task.train_x.shape[1:]).to(device)
    loss_fn, state = build_loss(cell)
    optimizer, schedule = build_optimizer(
        cell.optimizer, model.parameters(), cell.lr, cell.params("optimizer")
    )
    train_x = torch.tensor(task.train_x, device=device)
    return Training(
        model=model,
        loss_fn=loss_fn,
        optimizer=optimizer,
        schedule=schedule,
        train_x=train_x,
        test_x=train_x if task.test_x is task.train_x else torch.tensor(task.test_x, device=device),
        test_y=task.test_y,
        generator=torch.Generator(device="cpu").manual_seed(cell.seed),
        state=state,
        batch_norm=any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()),
        **{k: torch.tensor(getattr(task, k), device=device)
           for k in ("val_x", "val_anomalies") if getattr(task, k) is not None},
    )
