"""trainables.optimizers against torch.optim: the same steps, bit for bit, without the
torch._dynamo import that torch.optim's classes cost a process."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from trainables.optimizers import build_optimizer

# Each optimizer's builder options, and the torch.optim class and arguments they stand for.
CASES = {
    "adam": ({"beta1": 0.8, "beta2": 0.99, "eps": 1e-7, "weight_decay": 5e-4},
             lambda groups: torch.optim.Adam(groups, betas=(0.8, 0.99), eps=1e-7,
                                             weight_decay=5e-4, fused=True)),
    "adam-defaults": ({}, lambda groups: torch.optim.Adam(groups, fused=True)),
    "sgd": ({"momentum": 0.9, "weight_decay": 1e-4},
            lambda groups: torch.optim.SGD(groups, momentum=0.9, weight_decay=1e-4,
                                           fused=True)),
    "sgd-plain": ({}, lambda groups: torch.optim.SGD(groups, fused=True)),
    "rmsprop": ({"alpha": 0.9, "momentum": 0.5, "eps": 1e-6, "weight_decay": 1e-3},
                lambda groups: torch.optim.RMSprop(groups, alpha=0.9, momentum=0.5, eps=1e-6,
                                                   weight_decay=1e-3)),
    "rmsprop-defaults": ({}, lambda groups: torch.optim.RMSprop(groups)),
}


def two_groups(seed: int) -> list[dict]:
    """Two lr groups of two parameters each (as a stack's per-lr blocks), one 4-D."""
    generator = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (5,), (2, 3, 3, 3), (7,)]
    leaves = [torch.randn(s, generator=generator).requires_grad_(True) for s in shapes]
    return [{"params": leaves[:2], "lr": 0.01}, {"params": leaves[2:], "lr": 0.003}]


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_step_and_the_schedule_match_torch_optim_bit_for_bit(case):
    options, reference = CASES[case]
    ours_groups, theirs_groups = two_groups(0), two_groups(0)
    ours, ours_schedule = build_optimizer(case.split("-")[0], ours_groups, 0.01,
                                          {**options, "step_every": 4, "gamma": 0.5})
    theirs = reference(theirs_groups)
    theirs_schedule = torch.optim.lr_scheduler.StepLR(theirs, 4, gamma=0.5)
    assert [g["lr"] for g in ours.param_groups] == [0.01, 0.003]  # each group keeps its lr
    generator = torch.Generator().manual_seed(1)
    for epoch in range(10):
        for _ in range(3):
            for optimizer in (ours, theirs):
                optimizer.zero_grad(set_to_none=True)
            for a, b in zip(*(sum((g["params"] for g in gs), [])
                              for gs in (ours_groups, theirs_groups)), strict=True):
                grad = torch.randn(a.shape, generator=generator)
                a.grad, b.grad = grad.clone(), grad.clone()
            ours.step()
            theirs.step()
        ours_schedule.step()
        theirs_schedule.step()
        assert ([g["lr"] for g in ours.param_groups]
                == [g["lr"] for g in theirs.param_groups]), epoch
    start = sum((g["params"] for g in two_groups(0)), [])
    for a, b, before in zip(*(sum((g["params"] for g in gs), [])
                              for gs in (ours_groups, theirs_groups)), start, strict=True):
        assert torch.equal(a, b)
        assert not torch.equal(a, before)  # it trained
    assert ours.param_groups[0]["lr"] == 0.01 * 0.5 ** 2  # halved after epochs 4 and 8


def test_a_parameter_without_a_gradient_is_left_alone():
    kept, moved = torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    optimizer, _ = build_optimizer("adam", [kept, moved], 0.1, {})
    moved.grad = torch.ones(3)
    optimizer.step()
    assert torch.equal(kept, torch.ones(3)) and not torch.equal(moved, torch.ones(3))
    optimizer.zero_grad()
    assert moved.grad is None


@pytest.mark.parametrize(("name", "options", "message"), [
    ("adam", {"eps": -1.0}, "eps must be >= 0, got -1.0"),
    ("adam", {"beta1": 1.0}, r"beta1 must be in \[0, 1\), got 1.0"),
    ("adam", {"beta2": -0.1}, r"beta2 must be in \[0, 1\), got -0.1"),
    ("sgd", {"momentum": -1}, "momentum must be >= 0, got -1"),
    ("rmsprop", {"alpha": -0.5}, "alpha must be >= 0, got -0.5"),
    ("sgd", {"weight_decay": float("nan")}, "weight_decay must be >= 0, got nan"),
    ("sgd", {"step_every": -2}, "step_every must be >= 0, got -2"),
])
def test_a_value_out_of_range_is_refused_naming_it(name, options, message):
    with pytest.raises(ValueError, match=message):
        build_optimizer(name, [torch.ones(2, requires_grad=True)], 0.1, options)
    with pytest.raises(ValueError, match="lr must be >= 0, got -0.1"):
        build_optimizer(name, [torch.ones(2, requires_grad=True)], -0.1, {})


def test_training_with_them_does_not_import_torch_dynamo():
    code = (
        "import sys, torch\n"
        "from trainables.optimizers import OPTIMIZERS, build_optimizer\n"
        "for name in OPTIMIZERS:\n"
        "    w = torch.ones(4, requires_grad=True)\n"
        "    opt, sched = build_optimizer(name, [w], 0.1, {'step_every': 1})\n"
        "    w.sum().backward(); opt.step(); sched.step(); opt.zero_grad()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"
