"""Optimizers and learning-rate schedules. Registry: OPTIMIZERS.

Each entry builds ``torch.optim`` from parameters, the cell's lr and its own parameters.
Every optimizer also takes ``step_every``/``gamma``: multiply the lr by gamma every
step_every epochs; step_every=0 keeps the lr constant. IAEAD's schedule (SGD, lr 0.1
halved every 50 epochs) is ``{name: sgd, step_every: 50, gamma: 0.5}`` with lr 0.1 (its
code halves from epoch 50 on, this from epoch 51: the lr changes after step_every epochs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

# Adam and SGD use torch's fused kernels (one kernel for all parameters, on CPU and CUDA):
# 1.3x the samples/s of the default at batch size 1 on CPU (bench/RESULTS.md).


def sgd(params: Iterable, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                           fused=True)


def rmsprop(params: Iterable, lr: float, alpha: float = 0.99, momentum: float = 0.0,
            eps: float = 1e-8, weight_decay: float = 0.0):
    return torch.optim.RMSprop(params, lr=lr, alpha=alpha, momentum=momentum, eps=eps,
                               weight_decay=weight_decay)


def adam(params: Iterable, lr: float, beta1: float = 0.9, beta2: float = 0.999,
         eps: float = 1e-8, weight_decay: float = 0.0):
    """Adam; IAEAD's code runs its Adam variant with eps=1e-7, weight_decay=5e-4."""
    return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps,
                            weight_decay=weight_decay, fused=True)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": sgd,
    "rmsprop": rmsprop,
    "adam": adam,
}
SCHEDULE_PARAMS = ("step_every", "gamma")


def build_optimizer(name: str, params: Iterable, lr: float, options: dict):
    """The optimizer and its step schedule (None when the lr is constant).

    Raises:
        KeyError: for an unknown optimizer name, listing the choices.
    """
    if name not in OPTIMIZERS:
        raise KeyError(f"unknown optimizer {name!r}; choose from {sorted(OPTIMIZERS)}")
    options = dict(options)
    step_every = int(options.pop("step_every", 0))
    gamma = float(options.pop("gamma", 0.5))
    optimizer = OPTIMIZERS[name](params, lr, **options)
    if not step_every:
        return optimizer, None
    return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_every, gamma=gamma)
