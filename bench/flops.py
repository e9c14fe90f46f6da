"""Benchmark 5: FLOPs per training sample of each model, and achieved FLOP/s as a share
of the device's measured peak (a large fp32 matmul timed in the same run).

    python -m bench.flops [--device cpu|cuda] [--batch-size 128]
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.common import machine, timed
from trainables.models import MODELS

SHAPES = {"cae": (1, 28, 28), "mlp_ae": (1, 32, 32), "mlp_vae": (1, 32, 32)}
PARAMS = {"cae": {}, "mlp_ae": {"hidden": [64]}, "mlp_vae": {"hidden": [64]}}


def train_step_flops(name: str, batch: int, device: torch.device) -> tuple[float, float]:
    """(FLOPs per sample of forward+backward, achieved FLOP/s of the training step)."""
    torch.manual_seed(0)
    model = MODELS[name](SHAPES[name], 8, **PARAMS[name]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.rand(batch, *SHAPES[name], device=device)

    def step() -> None:
        out = model(x)
        loss = ((out.recon - x) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    for _ in range(3):
        step()
    steps = 50
    seconds = timed(lambda: [step() for _ in range(steps)], device)
    return flops / batch, flops * steps / seconds


def stacked_flops(per_sample: float, batch: int, device: torch.device, k: int) -> float:
    """Achieved FLOP/s of K CAE cells trained as one vmapped stack (trainables.train_stack)."""
    from bench.throughput import stacked_runner

    x = torch.rand(max(batch * 8, 2048), *SHAPES["cae"], device=device)
    epoch, samples = stacked_runner(x, batch, device, k)
    return per_sample * samples / timed(epoch, device)


def matmul_peak(device: torch.device, n: int = 4096) -> float:
    a = torch.rand(n, n, device=device)
    b = torch.rand(n, n, device=device)
    a @ b
    reps = 10 if device.type == "cuda" else 2
    seconds = timed(lambda: [a @ b for _ in range(reps)], device)
    return 2 * n**3 * reps / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--stack", type=int, default=64, help="cells in the stacked row")
    parser.add_argument("--peak-size", type=int, default=4096,
                        help="side of the square matrices the matmul peak is measured on")
    args = parser.parse_args()
    device = torch.device(args.device)
    peak = matmul_peak(device, args.peak_size)
    print(f"# FLOPs on {machine(device)}; measured fp32 matmul peak {peak / 1e12:.2f} TFLOP/s")
    print("| model | input | MFLOP/sample (fwd+bwd) | achieved GFLOP/s | share of matmul peak |")
    print("|---|---|---|---|---|")
    for name in MODELS:
        if name not in SHAPES:
            continue
        per_sample, rate = train_step_flops(name, args.batch_size, device)
        print(f"| {name} | {SHAPES[name]} | {per_sample / 1e6:.3f} | {rate / 1e9:,.1f} "
              f"| {rate / peak:.2%} |", flush=True)
        if name == "cae":
            stacked = stacked_flops(per_sample, args.batch_size, device, args.stack)
            print(f"| cae, stacked K={args.stack} | {SHAPES[name]} | {per_sample / 1e6:.3f} "
                  f"| {stacked / 1e9:,.1f} | {stacked / peak:.2%} |", flush=True)


if __name__ == "__main__":
    main()
