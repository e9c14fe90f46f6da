"""Benchmark 1 (+4): training samples/s of one cell, our loop against the usual loop.

Same model (the LMSE paper's CAE), same data, same batch size and optimizer. Columns:
baseline (DataLoader loop, see bench/common.py), ours (trainables.train: data resident on
the device, index slices, no per-step sync), and stacked (K cells in one vmapped model,
trainables.train_stack; samples/s counts every cell's samples). The columns are timed in
interleaved rounds (one epoch each, every column in turn); the table prints each column's
median samples/s and the median of its per-round ratio to the baseline.

    python bench/throughput.py [--device cpu|cuda] [--batch-sizes 1 16 128 1024]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

from bench.common import baseline_epoch, images_uint8, machine, timed
from study.cell import Cell
from trainables.assemble import Training
from trainables.models import MODELS
from trainables.optimizers import build_optimizer
from trainables.train import train_epoch
from trainables.train_stack import Stack, train_stack_epoch


def samples_for(batch_size: int, budget: int) -> int:
    return max(batch_size * 8, budget)


def our_runner(x: torch.Tensor, batch_size: int, device: torch.device):
    """(timed epoch, samples it trains) of our loop (trainables.train)."""
    torch.manual_seed(0)
    model = MODELS["cae"](tuple(x.shape[1:]), 16).to(device)
    trial = Training(model=model,
                     loss_fn=lambda out, t: ((out.recon - t) ** 2).flatten(1).mean(1),
                     optimizer=build_optimizer("adam", model.parameters(), 1e-3, {})[0],
                     schedule=None,
                     train_x=x, test_x=x[:1], test_y=np.zeros(1), generator=torch.Generator())
    train_epoch(trial, batch_size, 0)  # warm-up (allocator, cuDNN autotune)
    return lambda: train_epoch(trial, batch_size, 1), len(x)


def baseline_runner(x_uint8: np.ndarray, batch_size: int, device: torch.device):
    """(timed epoch, samples it trains) of the usual DataLoader loop (bench.common)."""
    torch.manual_seed(0)
    model = MODELS["cae"]((1, *x_uint8.shape[1:]), 16).to(device)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    generator = torch.Generator().manual_seed(0)
    baseline_epoch(model, x_uint8[: batch_size * 2], batch_size, device, optimizer, generator)
    return (lambda: baseline_epoch(model, x_uint8, batch_size, device, optimizer, generator),
            len(x_uint8))


def stacked_runner(x: torch.Tensor, batch_size: int, device: torch.device, k: int):
    """(timed epoch, cell-samples it trains) of K cells as one vmapped stack."""
    x = x[: max(batch_size * 4, len(x) * 8 // k)]  # about the other columns' cell-samples
    cells = [Cell(study="bench", latent_dim=16, seed=s, batch_size=batch_size) for s in range(k)]
    stack = Stack(cells, tuple(x.shape[1:]), device)
    orders = torch.stack([torch.randperm(len(x)) for _ in range(k)]).to(device)
    train_stack_epoch(stack, x, list(range(k)), orders, batch_size)  # warm-up
    return lambda: train_stack_epoch(stack, x, list(range(k)), orders, batch_size), k * len(x)


def interleaved(runners: list, device: torch.device, rounds: int) -> list[tuple[float, float]]:
    """(median samples/s, median ratio to the first runner) of each runner, timed in
    ``rounds`` rounds of one epoch each, one runner after another, so a slow spell of a
    shared machine slows every column of a round alike and the ratios stay fair."""
    rates = [[] for _ in runners]
    for _ in range(rounds):
        for i, (epoch, samples) in enumerate(runners):
            rates[i].append(samples / timed(epoch, device))
    ratios = [[mine / base for mine, base in zip(r, rates[0], strict=True)] for r in rates]
    return [(statistics.median(r), statistics.median(q)) for r, q in zip(rates, ratios,
                                                                         strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 32, 128, 1024])
    parser.add_argument("--samples", type=int, default=2000, help="images per timed epoch")
    parser.add_argument("--stack", type=int, nargs="+", default=[8, 32],
                        help="cells per stacked model (a column each)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved timings per column (medians are printed)")
    args = parser.parse_args()
    device = torch.device(args.device)
    images, name = images_uint8()
    print(f"# throughput on {machine(device)}, data {name}, torch {torch.__version__}")
    stacked_heads = "".join(f" stacked K={k} samples/s | K={k}/baseline |" for k in args.stack)
    print(f"| batch | baseline samples/s | ours samples/s | ours/baseline |{stacked_heads}")
    print("|---" * (4 + 2 * len(args.stack)) + "|")
    for bs in args.batch_sizes:
        n = samples_for(bs, args.samples) if device.type == "cuda" else args.samples
        subset = np.resize(images, (n, *images.shape[1:]))
        x = torch.tensor(subset[:, None] / 255.0, dtype=torch.float32, device=device)
        runners = [baseline_runner(subset, bs, device), our_runner(x, bs, device),
                   *(stacked_runner(x, bs, device, k) for k in args.stack)]
        (base, _), *mine = interleaved(runners, device, args.rounds)
        cells = "".join(f" {rate:,.0f} | {ratio:.2f}x |" for rate, ratio in mine)
        print(f"| {bs} | {base:,.0f} |{cells}", flush=True)


if __name__ == "__main__":
    main()
