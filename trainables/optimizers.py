"""Optimizers and learning-rate schedules. Registry: OPTIMIZERS.

Each entry builds an optimizer from parameters (or groups), the cell's lr and its own
parameters. Every optimizer also takes ``step_every``/``gamma``: multiply the lr by gamma
every step_every epochs; step_every=0 keeps the lr constant. IAEAD's schedule (SGD, lr 0.1
halved every 50 epochs) is ``{name: sgd, step_every: 50, gamma: 0.5}`` with lr 0.1 (its
code halves from epoch 50 on, this from epoch 51: the lr changes after step_every epochs).

The updates are torch's own functional kernels (torch.optim.adam.adam, sgd.sgd,
rmsprop.rmsprop), called with the per-parameter state and group options that
torch.optim.Adam/SGD/RMSprop would pass them: every step is bit for bit theirs
(tests/test_optimizers.py). The classes themselves are not used because their first use
imports torch._dynamo (their methods are wrapped to keep it out), 1.3-2.3 s of every trial
process and of the driver's cell checks on 2 CPU cores (bench/RESULTS.md, issue 21).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import adam as torch_adam
from torch.optim import rmsprop as torch_rmsprop
from torch.optim import sgd as torch_sgd


class GroupOptimizer:
    """What the trainers use of torch.optim.Optimizer: ``param_groups`` (dicts holding
    "params", "lr" and the algorithm's options), ``state`` (per parameter), ``step()``
    and ``zero_grad()``. Subclasses name their defaults and their update."""

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        for name in ("lr", "eps", "momentum", "weight_decay", "alpha"):
            if name in defaults and not defaults[name] >= 0:
                raise ValueError(f"{name} must be >= 0, got {defaults[name]}")
        given = list(params)
        groups = given if given and isinstance(given[0], dict) else [{"params": given}]
        self.defaults = defaults
        self.param_groups = [{**defaults, **group, "params": list(group["params"])}
                             for group in groups]
        self.state: dict[torch.Tensor, dict[str, Any]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self.update(group, params)

    def update(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        raise NotImplementedError


def zeros_like(p: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(p, memory_format=torch.preserve_format)


def scalar_dtype() -> torch.dtype:
    """The dtype of an unfused optimizer's step counter (torch.optim's _get_scalar_dtype)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class Adam(GroupOptimizer):
    """torch.optim.Adam(fused=True): one fused kernel for a group's parameters."""

    def __init__(self, params: Iterable, lr: float, betas: tuple[float, float], eps: float,
                 weight_decay: float):
        for i, beta in enumerate(betas, start=1):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"beta{i} must be in [0, 1), got {beta}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay, "capturable": False})

    def update(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        for p in params:
            if p not in self.state:  # torch.optim.Adam's _init_group, fused
                self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                 "exp_avg": zeros_like(p), "exp_avg_sq": zeros_like(p)}
        states = [self.state[p] for p in params]
        beta1, beta2 = group["betas"]
        torch_adam.adam(
            params, [p.grad for p in params], [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states], [], [s["step"] for s in states],
            foreach=False, capturable=group["capturable"], differentiable=False, fused=True,
            grad_scale=None, found_inf=None, has_complex=any(map(torch.is_complex, params)),
            decoupled_weight_decay=False, amsgrad=False, beta1=beta1, beta2=beta2,
            lr=group["lr"], weight_decay=group["weight_decay"], eps=group["eps"],
            maximize=False)


class SGD(GroupOptimizer):
    """torch.optim.SGD(fused=True), momentum without dampening or Nesterov."""

    def __init__(self, params: Iterable, lr: float, momentum: float, weight_decay: float):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    def update(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        momentum = group["momentum"]
        buffers = [self.state.get(p, {}).get("momentum_buffer") for p in params]
        torch_sgd.sgd(
            params, [p.grad for p in params], buffers if momentum != 0 else [],
            has_sparse_grad=any(p.grad.is_sparse for p in params), foreach=False, fused=True,
            grad_scale=None, found_inf=None, weight_decay=group["weight_decay"],
            momentum=momentum, lr=group["lr"], dampening=0.0, nesterov=False, maximize=False)
        if momentum != 0:  # the kernel made the first step's buffers: kept, as SGD does
            for p, buffer in zip(params, buffers, strict=True):
                self.state.setdefault(p, {})["momentum_buffer"] = buffer


class RMSprop(GroupOptimizer):
    """torch.optim.RMSprop (not centered): torch's default kernel choice (foreach=None)."""

    def __init__(self, params: Iterable, lr: float, alpha: float, momentum: float, eps: float,
                 weight_decay: float):
        super().__init__(params, {"lr": lr, "alpha": alpha, "momentum": momentum, "eps": eps,
                                  "weight_decay": weight_decay, "capturable": False})

    def update(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        momentum = group["momentum"]
        for p in params:
            if p not in self.state:  # torch.optim.RMSprop's _init_group
                device = p.device if group["capturable"] else None
                self.state[p] = {"step": torch.zeros((), dtype=scalar_dtype(), device=device),
                                 "square_avg": zeros_like(p)}
                if momentum > 0:
                    self.state[p]["momentum_buffer"] = zeros_like(p)
        states = [self.state[p] for p in params]
        torch_rmsprop.rmsprop(
            params, [p.grad for p in params], [s["square_avg"] for s in states], [],
            [s["momentum_buffer"] for s in states] if momentum > 0 else [],
            [s["step"] for s in states], foreach=None, maximize=False, differentiable=False,
            capturable=group["capturable"], has_complex=any(map(torch.is_complex, params)),
            lr=group["lr"], alpha=group["alpha"], eps=group["eps"],
            weight_decay=group["weight_decay"], momentum=momentum, centered=False)


def sgd(params: Iterable, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
    return SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def rmsprop(params: Iterable, lr: float, alpha: float = 0.99, momentum: float = 0.0,
            eps: float = 1e-8, weight_decay: float = 0.0):
    return RMSprop(params, lr=lr, alpha=alpha, momentum=momentum, eps=eps,
                   weight_decay=weight_decay)


def adam(params: Iterable, lr: float, beta1: float = 0.9, beta2: float = 0.999,
         eps: float = 1e-8, weight_decay: float = 0.0):
    """Adam; IAEAD's code runs its Adam variant with eps=1e-7, weight_decay=5e-4."""
    return Adam(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)


OPTIMIZERS: dict[str, Callable[..., GroupOptimizer]] = {
    "sgd": sgd,
    "rmsprop": rmsprop,
    "adam": adam,
}
SCHEDULE_PARAMS = ("step_every", "gamma")


class StepSchedule:
    """torch.optim.lr_scheduler.StepLR: each group's lr times ``gamma`` after every
    ``step_every`` calls of step() (once an epoch), multiplied in place as StepLR does."""

    def __init__(self, optimizer: GroupOptimizer, step_every: int, gamma: float):
        self.optimizer, self.step_every, self.gamma = optimizer, step_every, gamma
        self.epoch = 0

    def step(self) -> None:
        self.epoch += 1
        if self.epoch % self.step_every == 0:
            for group in self.optimizer.param_groups:
                group["lr"] = group["lr"] * self.gamma


def build_optimizer(name: str, params: Iterable, lr: float, options: dict):
    """The optimizer and its step schedule (None when the lr is constant).

    Raises:
        KeyError: for an unknown optimizer name, listing the choices.
        ValueError: for a value out of its optimizer's range, naming it.
    """
    if name not in OPTIMIZERS:
        raise KeyError(f"unknown optimizer {name!r}; choose from {sorted(OPTIMIZERS)}")
    options = dict(options)
    step_every = int(options.pop("step_every", 0))
    gamma = float(options.pop("gamma", 0.5))
    optimizer = OPTIMIZERS[name](params, lr, **options)
    if not step_every:
        return optimizer, None
    if step_every < 0:
        raise ValueError(f"step_every must be >= 0, got {step_every}")
    return optimizer, StepSchedule(optimizer, step_every, gamma)
