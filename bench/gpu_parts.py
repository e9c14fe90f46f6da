"""The measurements bench/gpu_suite.py runs that no other benchmark has: the stacked step
with bf16 and CUDA graphs (trainables.accelerate), bf16's AUROC difference on a preset,
and a whole grid through `adstudy submit`. Each returns plain figures; the suite writes
the tables."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import ROOT, timed
from study.cell import Cell
from trainables.accelerate import StackStepper, device_auroc, device_errors
from trainables.train_stack import Stack


def matmul_peak(device: torch.device, n: int, dtype: torch.dtype) -> float:
    """FLOP/s of an n x n matmul in ``dtype`` (best of three timings)."""
    a = torch.rand(n, n, device=device, dtype=dtype)
    b = torch.rand(n, n, device=device, dtype=dtype)
    a @ b
    reps = 10 if device.type == "cuda" else 2
    best = min(timed(lambda: [a @ b for _ in range(reps)], device) for _ in range(3))
    return 2 * n**3 * reps / best


def stepper_for(k: int, batch: int, x: torch.Tensor, bf16: bool, graphs: bool
                ) -> tuple[StackStepper, torch.Tensor]:
    """A fresh stack of K CAE cells (seeds 0..K-1) with its stepper and image orders."""
    cells = [Cell(study="bench", latent_dim=16, seed=s, batch_size=batch) for s in range(k)]
    stack = Stack(cells, tuple(x.shape[1:]), x.device)
    generator = torch.Generator().manual_seed(0)
    orders = torch.stack([torch.randperm(len(x), generator=generator) for _ in range(k)])
    return StackStepper(stack, x, batch, bf16=bf16, graphs=graphs), orders.to(x.device)


def stacked_rate(k: int, batch: int, x: torch.Tensor, bf16: bool, graphs: bool) -> float:
    """Cell-samples/s of one epoch of a K stack (after a warm-up epoch: capture, autotune)."""
    stepper, orders = stepper_for(k, batch, x, bf16, graphs)
    stepper.epoch(list(range(k)), orders)
    return k * len(x) / timed(lambda: stepper.epoch(list(range(k)), orders), x.device)


def graph_difference(k: int, batch: int, x: torch.Tensor, epochs: int = 2) -> float:
    """Largest relative difference of any cell's train_loss between eager steps and graph
    replays of the same stack over ``epochs`` epochs (0 where no graph is used)."""
    eager, orders = stepper_for(k, batch, x, False, False)
    graphed, _ = stepper_for(k, batch, x, False, True)
    worst = 0.0
    for _ in range(epochs):
        a = eager.epoch(list(range(k)), orders)["train_loss"]
        b = graphed.epoch(list(range(k)), orders)["train_loss"]
        worst = max(worst, float(((a - b).abs() / a.abs()).max()))
    return worst


def accelerated_aurocs(cells: list[Cell], root: str, device: torch.device, bf16: bool
                       ) -> tuple[np.ndarray, float]:
    """(final test AUROC of each cell, seconds) of a stackable family trained with
    StackStepper, scored on the device after every epoch (one copy to the host at the
    end). The same seeds, initial weights and batch orders for fp32 and bf16."""
    from trainables.assemble import build_task

    started = time.perf_counter()
    task = build_task(cells[0], root)
    x = torch.tensor(task.train_x, device=device)
    test_x = torch.tensor(task.test_x, device=device)
    labels = torch.tensor(task.test_y, device=device)
    stack = Stack(cells, tuple(task.train_x.shape[1:]), device)
    stepper = StackStepper(stack, x, cells[0].batch_size, bf16=bf16)
    generators = [torch.Generator().manual_seed(c.seed) for c in cells]
    active = list(range(len(cells)))
    per_epoch = []
    for _ in range(cells[0].epochs):
        orders = torch.stack([torch.randperm(len(x), generator=g) for g in generators])
        stepper.epoch(active, orders.to(device))
        per_epoch.append(device_auroc(device_errors(stack, active, test_x, bf16), labels))
    aurocs = torch.stack(per_epoch).cpu().numpy()
    return aurocs[-1], time.perf_counter() - started


def adstudy(*args: str, env: dict, timeout: float | None = None) -> tuple[int, str, float]:
    """(exit code, stdout, seconds) of an adstudy command in a process of its own; past
    ``timeout`` it gets Ctrl-C (a submit stores what finished and exits 130)."""
    command = [sys.executable, "-c", "import sys; from study.cli import main; "
               "sys.exit(main(sys.argv[1:]))", *args]
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    return proc.returncode, out, time.perf_counter() - started


def run_grid(spec: Path, data_root: Path, results: Path, budget_s: float) -> dict:
    """`adstudy describe` then `adstudy submit` of ``spec`` on the data in ``data_root``,
    the submit stopped (Ctrl-C) after ``budget_s``; what the store then holds."""
    from study.spec import load_spec
    from study.status import study_status
    from study.store import ResultsStore

    env = {**os.environ, "ADSTUDY_DATA": str(data_root),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    _, described, _ = adstudy("describe", str(spec), "--results", str(results), env=env,
                              timeout=300)
    estimate = [line.strip() for line in described.splitlines()
                if "one GPU (H100)" in line or "2 CPU cores" in line]
    code, out, wall = adstudy("submit", str(spec), "--results", str(results), "--yes",
                              env=env, timeout=budget_s)
    status = study_status(ResultsStore(str(results), load_spec(spec).study))
    return {"exit": code, "wall_s": wall, "estimate": estimate, "status": status,
            "tail": out.strip().splitlines()[-3:]}
