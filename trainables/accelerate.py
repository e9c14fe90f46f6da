"""Fewer launches and narrower arithmetic for a stacked step (trainables.train_stack).

Three accelerations of ``train_stack_epoch``'s work, each optional, for the benchmarks
(bench/gpu_suite.py) to measure against the plain stacked epoch:

- **bf16 autocast**: the vmapped forward (and so its backward) runs under
  ``torch.autocast(dtype=torch.bfloat16)``; parameters, optimizer state, losses and sums
  stay fp32. Results differ from fp32 by bf16 rounding: the suite measures the AUROC
  difference on a preset before anyone may turn it on.
- **CUDA graphs**: after a few eager warm-up steps (real steps of the epoch, on a side
  stream, as torch.cuda.graphs asks), one full step (gather of the batch by index, vmapped
  forward, backward, per-cell gradient norms, the optimizer's step, the per-cell sums) is
  captured once and replayed for every full batch: one launch a step instead of a few
  hundred. The optimizer runs with ``capturable=True``; a last, smaller batch and a stack
  with an lr schedule (the lr would be frozen into the graph) run eagerly.
- **scores on the device**: each epoch's test errors and AUROC (ranks by searchsorted,
  ties counted one half) stay on the device; one copy to the host an epoch.

Per-cell results equal ``train_stack_epoch``'s with bf16 off (graphs: up to float
rounding; tests/test_accelerate.py), the padding mask of a mixed-class stack included.
Not yet wired into the training loop (trainables.train_stack / run.py): a trial does not
use it. Measured on an H200 (bench/RESULTS.md): CUDA graphs make the stacked step
1.7-2.7x faster; bf16 moves AUROCs by more than the ±0.005 tolerance.
"""

from __future__ import annotations

import contextlib

import torch
from torch.func import vmap

from trainables.train import EVAL_BATCH
from trainables.train_stack import Stack, epoch_means, real_objective

WARMUP_STEPS = 3  # eager steps before a capture (cuBLAS/cuDNN handles, optimizer state)


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on ``device`` when asked, else a context that changes nothing."""
    if not bf16:
        return contextlib.nullcontext()
    # no weight-cast cache: a captured CUDA graph must not keep casts from its capture
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=False)


class StackStepper:
    """Runs a Stack's epochs like train_stack_epoch, with bf16 and CUDA graphs as asked.

    ``graphs`` is honoured on a CUDA device only, and not for a stack with an lr
    schedule (``self.graphs`` says whether it is in use). The graph is captured on the
    first epoch and kept for the next ones (same images tensor ``x``, same batch size).
    """

    def __init__(self, stack: Stack, x: torch.Tensor, batch_size: int, *,
                 bf16: bool = False, graphs: bool = False):
        self.stack, self.x, self.batch_size, self.bf16 = stack, x, batch_size, bf16
        self.graphs = graphs and x.is_cuda and stack.schedule is None
        k = len(stack.rows)
        self.sums = torch.zeros(3, k, device=x.device)  # loss, mse, grad norm (row order)
        self.index = torch.zeros(k, batch_size, dtype=torch.long, device=x.device)
        self.real: torch.Tensor | None = None  # the padding mask's batch (masked stacks)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0
        if self.graphs:
            for group in stack.optimizer.param_groups:
                group["capturable"] = True  # step counters on the device, no host sync

    def step(self, index: torch.Tensor, zero_grad: bool = True,
             real: torch.Tensor | None = None) -> None:
        """One step on the images ``x[index]`` ([K, b] indices, row order); ``real``
        ([K, b]): 1 for a row's real images, 0 for the copies padding a shorter class's
        last batch (each row's objective is then the mean of its real images only, as in
        train_stack_epoch)."""
        stack = self.stack
        with autocast(self.x.device, self.bf16):
            per_sample, mse = stack.step_values(stack.params(), self.x[index])
        objective, per_sample, mse = real_objective(per_sample.float(), mse.float(), real)
        if zero_grad:
            stack.optimizer.zero_grad(set_to_none=True)
        objective.sum().backward()
        norms = stack.grad_norms()
        stack.optimizer.step()
        self.sums += torch.stack([per_sample.detach().sum(dim=1), mse.detach().sum(dim=1),
                                  norms])

    def capture(self) -> None:
        """Records one step on ``self.index`` (and ``self.real``) as a CUDA graph
        (nothing is computed)."""
        self.stack.optimizer.zero_grad(set_to_none=True)  # grads: the graph's own tensors
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.step(self.index, zero_grad=False, real=self.real)

    def full_step(self, index: torch.Tensor, real: torch.Tensor | None = None) -> None:
        """A step on a full batch: eager (on a side stream) until warmed up, then the graph
        (one graph a stepper: a stack is masked in every epoch or in none)."""
        if not self.graphs:
            self.step(index, real=real)
            return
        if (real is None) != (self.real is None) and (self.graph is not None or self.eager_steps):
            raise ValueError("a stepper's epochs are all masked or all unmasked")
        self.index.copy_(index)
        if real is not None:
            if self.real is None:
                self.real = torch.empty_like(real)
            self.real.copy_(real)
        if self.graph is None and self.eager_steps < WARMUP_STEPS:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.step(self.index, real=self.real)
            torch.cuda.current_stream().wait_stream(side)
            self.eager_steps += 1
            return
        if self.graph is None:
            saved = self.sums.clone()
            self.capture()
            self.sums.copy_(saved)  # capture computes nothing, but be exact about it
        self.graph.replay()

    def epoch(self, active: list[int], orders: torch.Tensor,
              mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One epoch of every cell (``orders``: each cell's image order, [K, n] in cell
        order; ``mask``: as train_stack_epoch's, 1 for real images, 0 for padding copies);
        per-cell sums as tensors [len(active)], as train_stack_epoch returns."""
        n, stack = orders.shape[1], self.stack
        orders = orders[stack.rows]
        weights = None if mask is None else mask.to(self.x.device)[stack.rows]
        self.sums.zero_()
        steps = 0
        for start in range(0, n, self.batch_size):
            index = orders[:, start : start + self.batch_size]
            real = None if weights is None else weights[:, start : start + self.batch_size]
            if index.shape[1] == self.batch_size:
                self.full_step(index, real)
            else:
                self.step(index, real=real)
            steps += 1
        if stack.schedule is not None:
            stack.schedule.step()
        return epoch_means(stack, active, self.sums, n, weights, steps)


@torch.no_grad()
def device_errors(stack: Stack, active: list[int], images: torch.Tensor,
                  bf16: bool = False) -> torch.Tensor:
    """Per-cell, per-image reconstruction MSE, [len(active), M], left on the device."""
    params = {name: stack.by_cell(p, active) for name, p in stack.params().items()}
    parts = []
    for chunk in images.split(EVAL_BATCH):
        with autocast(images.device, bf16):
            recon, _ = vmap(stack.forward, in_dims=(0, None))(params, chunk)
        parts.append(((recon.float() - chunk) ** 2).flatten(2).mean(dim=2))
    return torch.cat(parts, dim=1)


def device_auroc(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """AUROC of each row of ``scores`` [K, M] (label 1 = anomaly = positive), on the
    device: the Mann-Whitney U over average ranks (ties one half), the value
    trainables.metrics.auroc gives. A row with a non-finite score gives NaN."""
    positive = labels.to(torch.bool)
    n_pos = int(positive.sum())
    n_neg = positive.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs both normals and anomalies in the labels")
    scores = scores.double()
    ordered = scores.sort(dim=1).values
    below = torch.searchsorted(ordered, scores, right=False)  # values smaller
    upto = torch.searchsorted(ordered, scores, right=True)  # values smaller or equal
    ranks = (below + upto + 1).double() / 2  # average 1-based rank
    u = ranks[:, positive].sum(dim=1) - n_pos * (n_pos + 1) / 2
    finite = torch.isfinite(scores).all(dim=1)
    return torch.where(finite, u / (n_pos * n_neg), torch.full_like(u, float("nan")))
