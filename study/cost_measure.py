"""Measures the training and evaluation throughput that study.cost's estimates rest on.

One trial's real training loop (trainables.train.train_epoch: data resident on the
device, index-sliced batches, Adam, MSE) on random images of each profile's shape, at
each batch size; evaluation is the forward pass in eval mode at the trainer's batch.
Prints a Python literal to paste into study.cost.RATES, with the machine it ran on.

    python -m study.cost_measure --device cuda      # on the GPU machine
    python -m study.cost_measure --device cpu       # here (torch uses every core it sees)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from trainables.assemble import Training
from trainables.models import MODELS
from trainables.optimizers import build_optimizer
from trainables.train import EVAL_BATCH, train_epoch

# (model, image shape, model params, latent dim): the shapes the presets train.
PROFILES = (
    ("cae", (1, 8, 8), {}, 16),
    ("cae", (1, 28, 28), {}, 16),
    ("lamp_ae", (1, 28, 28), {}, 16),
    ("lamp_ae", (3, 128, 128), {}, 64),
    ("iaead_cae", (1, 32, 32), {}, 256),
    ("iaead_cae", (3, 32, 32), {}, 256),
    ("mlp_ae", (1, 2, 2), {"hidden": [2]}, 1),
    ("mlp_ae", (1, 32, 32), {"hidden": [5]}, 2),
    ("mlp_ae", (1, 28, 28), {"hidden": [64]}, 8),
    ("mlp_vae", (1, 28, 28), {"hidden": [64]}, 8),
)
BATCH_SIZES = (1, 4, 16, 32, 64, 128, 256, 1024)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_rate(name: str, shape: tuple, params: dict, latent: int, batch: int,
               device: torch.device, budget_s: float) -> float:
    """Training samples/s of one profile at one batch size: a two-step warm-up epoch
    (allocator, cuDNN autotuning) times a step, then one epoch of as many steps as fit
    in ``budget_s`` (2 to 64) is timed."""
    torch.manual_seed(0)
    model = MODELS[name](shape, latent, **params).to(device)
    trial = Training(model=model,
                     loss_fn=lambda out, t: ((out.recon - t) ** 2).flatten(1).mean(1),
                     optimizer=build_optimizer("adam", model.parameters(), 1e-3, {})[0],
                     schedule=None,
                     train_x=torch.rand(batch * 2, *shape, device=device), test_x=torch.zeros(1),
                     test_y=np.zeros(1), generator=torch.Generator(),
                     batch_norm=any("BatchNorm" in type(m).__name__ for m in model.modules()))
    started = time.perf_counter()
    train_epoch(trial, batch, 0)
    sync(device)
    step_s = (time.perf_counter() - started) / 2
    steps = int(min(64, max(2, budget_s / max(step_s, 1e-6))))
    trial.train_x = torch.rand(batch * steps, *shape, device=device)
    started = time.perf_counter()
    train_epoch(trial, batch, 1)
    sync(device)
    return batch * steps / (time.perf_counter() - started)


@torch.no_grad()
def eval_rate(name: str, shape: tuple, params: dict, latent: int, device: torch.device,
              budget_s: float) -> float:
    """Evaluation (forward, eval mode) samples/s at the trainer's evaluation batch."""
    model = MODELS[name](shape, latent, **params).to(device).eval()
    x = torch.rand(EVAL_BATCH if device.type == "cuda" else 64, *shape, device=device)
    model(x).recon.sum().item()
    samples, started = 0, time.perf_counter()
    while time.perf_counter() - started < budget_s:
        model(x).recon.sum().item()
        samples += len(x)
    return samples / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--budget", type=float, default=0.6, help="seconds per measurement")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES))
    parser.add_argument("--max-batch-pixels", type=int, default=0,
                        help="skip batch sizes whose batch holds more values than this (0: none)")
    parser.add_argument("--skip", type=int, default=0, help="start at this profile")
    args = parser.parse_args()
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"cpu, {torch.get_num_threads()} torch threads")
    print(f"# measured on {where}, torch {torch.__version__}", flush=True)
    for name, shape, params, latent in PROFILES[args.skip:]:
        values = int(np.prod(shape))
        train = {}
        for b in args.batch_sizes:
            if args.max_batch_pixels and b * values > args.max_batch_pixels:
                continue
            try:
                train[b] = round(train_rate(name, shape, params, latent, b, device, args.budget))
            except ValueError:  # BatchNorm1d cannot train on a batch of one image
                continue
        evaluate = round(eval_rate(name, shape, params, latent, device, args.budget))
        print(f"({name!r}, {shape}): {{'train': {train}, 'eval': {evaluate}}},", flush=True)


if __name__ == "__main__":
    main()
