"""Shared pieces of the benchmarks: the data, the baseline loop and a timer.

The baseline is written the way the papers' public code trains (torchvision-style
Dataset that converts each uint8 image through PIL and ToTensor, a DataLoader that
collates per batch, a host-to-device copy per batch and loss.item() every step).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parents[1]
# ADSTUDY_MNIST5K points elsewhere (the GPU machine gets a carried copy).
MNIST5K = Path(os.environ.get("ADSTUDY_MNIST5K", ROOT.parent / "shared" / "data" / "mnist5k.npz"))


def images_uint8() -> tuple[np.ndarray, str]:
    """Real MNIST (5,000 images) when the shared subset is here, else the 8x8 digits."""
    if MNIST5K.exists():
        with np.load(MNIST5K) as data:
            return data["x"], "mnist5k (28x28)"
    from sklearn.datasets import load_digits

    return (load_digits().images * 255 / 16).astype(np.uint8), "digits (8x8)"


class PilImages(Dataset):
    """torchvision's pattern: a PIL image per item, ToTensor-style scaling to [0, 1]."""

    def __init__(self, x: np.ndarray):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        image = Image.fromarray(self.x[i], mode="L")
        return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)[None]


def baseline_epoch(model: nn.Module, x: np.ndarray, batch_size: int, device: torch.device,
                   optimizer: torch.optim.Optimizer, generator: torch.Generator) -> float:
    """One epoch of the usual loop; returns the mean loss (read every step, as the usual
    code does for its progress bar)."""
    loader = DataLoader(PilImages(x), batch_size=batch_size, shuffle=True, generator=generator)
    total = 0.0
    model.train()
    for batch in loader:
        batch = batch.to(device)
        recon = model(batch).recon
        loss = ((recon - batch) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
    return total / len(x)


def timed(fn, device: torch.device) -> float:
    """Seconds for fn(), with the device synchronised before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def machine(device: torch.device) -> str:
    import platform

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
