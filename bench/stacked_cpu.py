"""The stacked step at batch <= 32 on this CPU against the papers' loop, and what bounds it.

One run measures, in interleaved rounds (bench.throughput.interleaved: every column in
each round, medians printed, ratios taken within a round):
  baseline      the papers' loop (bench/common.py: PIL Dataset, DataLoader, .item())
  stacked K     K LMSE CAE cells as one vmapped stack (trainables.train_stack), fp32
  stacked bf16  the same under bf16 autocast (trainables.accelerate)
  ceiling       one cell of our loop at batch 128 and 256: the convolutions' best rate
                on this CPU, with every per-step overhead amortised
and then the bound: FLOPs per sample (torch.utils.flop_counter), achieved GFLOP/s of each
column against the measured fp32 matmul peak, and a torch.profiler breakdown of the
stacked step (time in convolution kernels vs every other op vs Python outside ops), with
the rate the step would reach if everything but its convolutions took no time.

    python -m bench.stacked_cpu [--batch-sizes 16 32] [--stack 8 32] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from bench.common import images_uint8, machine
from bench.flops import matmul_peak, train_step_flops
from bench.throughput import baseline_runner, interleaved, our_runner
from study.cell import Cell
from trainables.accelerate import StackStepper
from trainables.train_stack import Stack

CONV = ("conv",)  # aten::convolution, convolution_backward, mkldnn_convolution, ...


def stacked(x: torch.Tensor, batch_size: int, k: int, bf16: bool = False):
    """(timed epoch, cell-samples) of K cells as one stack, through StackStepper."""
    cells = [Cell(study="bench", latent_dim=16, seed=s, batch_size=batch_size) for s in range(k)]
    stack = Stack(cells, tuple(x.shape[1:]), x.device)
    stepper = StackStepper(stack, x, batch_size, bf16=bf16)
    orders = torch.stack([torch.randperm(len(x)) for _ in range(k)])
    stepper.epoch(list(range(k)), orders)  # warm-up
    return lambda: stepper.epoch(list(range(k)), orders), k * len(x)


def profile_step(x: torch.Tensor, batch_size: int, k: int, steps: int = 20) -> dict:
    """Per step of a K stack: wall ms, ms in convolution ops (self time), ms in the other
    ops, ms outside any op (Python, vmap's dispatch), and the other ops' count."""
    x = x[: batch_size * steps]
    epoch, _ = stacked(x, batch_size, k)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        epoch()
        wall = time.perf_counter() - start
    conv = other = 0.0
    other_ops = 0
    for event in prof.key_averages():
        if event.key.startswith("ProfilerStep"):
            continue
        if any(word in event.key for word in CONV):
            conv += event.self_cpu_time_total
        else:
            other += event.self_cpu_time_total
            other_ops += event.count
    # profiler times are in microseconds; every figure per step, in ms
    return {"wall": wall * 1e3 / steps, "conv": conv / 1e3 / steps,
            "other": other / 1e3 / steps, "ops": other_ops / steps}


def rate_table(images: np.ndarray, batch_sizes: list[int], ks: list[int], rounds: int,
               samples: int) -> dict[int, list[tuple[str, float, float]]]:
    """{batch: [(column, samples/s, ratio to baseline)]}, each batch in one interleaved run."""
    subset = np.resize(images, (samples, *images.shape[1:]))
    x = torch.tensor(subset[:, None] / 255.0, dtype=torch.float32)
    out = {}
    for bs in batch_sizes:
        names = ["baseline", *(f"stacked K={k}" for k in ks), f"stacked K={ks[0]} bf16",
                 "ceiling: 1 cell, batch 128", "ceiling: 1 cell, batch 256"]
        runners = [baseline_runner(subset, bs, x.device),
                   *(stacked(x, bs, k) for k in ks), stacked(x, bs, ks[0], bf16=True),
                   our_runner(x, 128, x.device), our_runner(x, 256, x.device)]
        results = interleaved(runners, x.device, rounds)
        out[bs] = [(n, rate, ratio) for n, (rate, ratio) in zip(names, results, strict=True)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--stack", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1024, help="images per timed epoch")
    parser.add_argument("--peak-size", type=int, default=2048)
    args = parser.parse_args()
    device = torch.device("cpu")
    images, name = images_uint8()
    print(f"# stacked step on {machine(device)}, {torch.get_num_threads()} torch threads, "
          f"data {name}, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")
    peak = max(matmul_peak(device, args.peak_size) for _ in range(3))
    per_sample, _ = train_step_flops("cae", 128, device)
    print(f"measured fp32 matmul peak {peak / 1e9:,.1f} GFLOP/s; CAE training step "
          f"{per_sample / 1e6:.3f} MFLOP a sample (forward + backward)\n")
    print("| batch | column | samples/s | vs baseline | GFLOP/s | share of matmul peak |")
    print("|---|---|---|---|---|---|")
    table = rate_table(images, args.batch_sizes, args.stack, args.rounds, args.samples)
    for bs, rows in table.items():
        for column, rate, ratio in rows:
            gflops = rate * per_sample / 1e9
            print(f"| {bs} | {column} | {rate:,.0f} | {ratio:.2f}x | {gflops:,.1f} "
                  f"| {gflops * 1e9 / peak:.1%} |", flush=True)
    x = torch.tensor(np.resize(images, (4096, 28, 28))[:, None] / 255.0, dtype=torch.float32)
    print(f"(load average now {os.getloadavg()[0]:.1f}; peak measured again: "
          f"{matmul_peak(device, args.peak_size) / 1e9:,.1f} GFLOP/s)\n")
    print("\n| batch | stack | ms a step | in conv ops | in other ops (count) | outside ops "
          "| samples/s if only conv ops took time | that vs baseline |")
    print("|---|---|---|---|---|---|---|---|")
    for bs, rows in table.items():
        base = rows[0][1]
        for k in args.stack:
            p = profile_step(x, bs, k)
            outside = max(0.0, p["wall"] - p["conv"] - p["other"])
            conv_only = k * bs / (p["conv"] / 1e3)
            print(f"| {bs} | K={k} | {p['wall']:.1f} | {p['conv']:.1f} | {p['other']:.1f} "
                  f"({p['ops']:.0f}) | {outside:.1f} | {conv_only:,.0f} "
                  f"| {conv_only / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
