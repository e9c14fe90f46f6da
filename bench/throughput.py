"""Benchmark 1 (+4): training samples/s of one cell, our loop against the usual loop.

Same model (the LMSE paper's CAE), same data, same batch size and optimizer. Columns:
baseline (DataLoader loop, see bench/common.py), ours (trainables.train: data resident on
the device, index slices, no per-step sync), and stacked (K cells in one vmapped model,
trainables.stacked; samples/s counts every cell's samples). Ratios are against the
baseline measured in the same run.

    python bench/throughput.py [--device cpu|cuda] [--batch-sizes 1 16 128 1024]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from bench.common import baseline_epoch, images_uint8, machine, timed
from study.cell import Cell
from trainables.models import MODELS
from trainables.optimizers import build_optimizer
from trainables.stacked import Stack, train_stack_epoch
from trainables.train import Trial, train_epoch


def samples_for(batch_size: int, budget: int) -> int:
    return max(batch_size * 8, budget)


def our_rate(x: torch.Tensor, batch_size: int, device: torch.device) -> float:
    torch.manual_seed(0)
    model = MODELS["cae"](tuple(x.shape[1:]), 16).to(device)
    trial = Trial(model=model, loss_fn=lambda out, t: ((out.recon - t) ** 2).flatten(1).mean(1),
                  optimizer=build_optimizer("adam", model.parameters(), 1e-3, {})[0],
                  schedule=None,
                  train_x=x, test_x=x[:1], test_y=np.zeros(1), generator=torch.Generator())
    train_epoch(trial, batch_size, 0)  # warm-up (allocator, cuDNN autotune)
    return len(x) / timed(lambda: train_epoch(trial, batch_size, 1), device)


def baseline_rate(x_uint8: np.ndarray, batch_size: int, device: torch.device) -> float:
    torch.manual_seed(0)
    model = MODELS["cae"]((1, *x_uint8.shape[1:]), 16).to(device)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    generator = torch.Generator().manual_seed(0)
    baseline_epoch(model, x_uint8[: batch_size * 2], batch_size, device, optimizer, generator)
    seconds = timed(
        lambda: baseline_epoch(model, x_uint8, batch_size, device, optimizer, generator), device
    )
    return len(x_uint8) / seconds


def stacked_rate(x: torch.Tensor, batch_size: int, device: torch.device, k: int) -> float:
    cells = [Cell(study="bench", latent_dim=16, seed=s, batch_size=batch_size) for s in range(k)]
    stack = Stack(cells, tuple(x.shape[1:]), device)
    orders = torch.stack([torch.randperm(len(x)) for _ in range(k)]).to(device)
    train_stack_epoch(stack, x, list(range(k)), orders, batch_size)  # warm-up
    seconds = timed(lambda: train_stack_epoch(stack, x, list(range(k)), orders, batch_size),
                    device)
    return k * len(x) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 128, 1024])
    parser.add_argument("--samples", type=int, default=2000, help="images per timed epoch")
    parser.add_argument("--stack", type=int, default=8, help="cells per stacked model")
    args = parser.parse_args()
    device = torch.device(args.device)
    images, name = images_uint8()
    print(f"# throughput on {machine(device)}, data {name}, torch {torch.__version__}")
    print("| batch | baseline samples/s | ours samples/s | ours/baseline "
          f"| stacked K={args.stack} samples/s | stacked/baseline |")
    print("|---|---|---|---|---|---|")
    for bs in args.batch_sizes:
        n = samples_for(bs, args.samples) if device.type == "cuda" else args.samples
        subset = np.resize(images, (n, *images.shape[1:]))
        x = torch.tensor(subset[:, None] / 255.0, dtype=torch.float32, device=device)
        base = baseline_rate(subset, bs, device)
        ours = our_rate(x, bs, device)
        stacked = stacked_rate(x, bs, device, args.stack)
        print(f"| {bs} | {base:,.0f} | {ours:,.0f} | {ours / base:.2f}x | {stacked:,.0f} "
              f"| {stacked / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
