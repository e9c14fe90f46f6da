"""Anomaly scores, higher = more anomalous. Registry: SCORES.

Each takes the model's Output on test images, the images, and the centre of the training
embeddings, and returns one score per image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from trainables.models import Output


def recon_mse(out: Output, x: torch.Tensor, center: torch.Tensor | None) -> torch.Tensor:
    """Per-sample mean squared reconstruction error: one yardstick for every loss."""
    return ((out.recon - x) ** 2).flatten(1).mean(dim=1)


def latent_center(out: Output, x: torch.Tensor, center: torch.Tensor | None) -> torch.Tensor:
    """Squared distance of the embedding to the training set's mean embedding (IAEAD eq. 9)."""
    if center is None:
        raise ValueError("score latent_center needs the centre of the training embeddings")
    return ((out.z - center) ** 2).sum(dim=1)


SCORES: dict[str, Callable[[Output, torch.Tensor, torch.Tensor | None], torch.Tensor]] = {
    "recon_mse": recon_mse,
    "latent_center": latent_center,
}
