"""Losses. Registry: LOSSES. Each returns per-sample values, shape [B]; the trainer averages.

Signature: ``loss(out, target, **params)`` where ``out`` is the model's Output (losses
that need only the reconstruction read ``out.recon``).

Scaling defaults for LMSE/LAMP (DESIGN: written down and tested):
    max_over="batch"  the max in eq. 16 / LAMP eq. 2 is over the whole batch's loss map
    detach=True       the max is a constant for the gradient (a rescaling, not a term)
    eps=1e-3          the largest element maps to -log(eps) ~= 6.9
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from trainables.models import Output


def per_sample_mean(values: torch.Tensor) -> torch.Tensor:
    return values.flatten(1).mean(dim=1)


def mse(out: Output, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per sample."""
    return per_sample_mean((out.recon - target) ** 2)


def mae(out: Output, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per sample."""
    return per_sample_mean((out.recon - target).abs())


def msle(out: Output, target: torch.Tensor) -> torch.Tensor:
    """LMSE paper eq. 2: mean of (log(1 + y) - log(1 + y_hat))^2."""
    return per_sample_mean((torch.log1p(target) - torch.log1p(out.recon)) ** 2)


BASE_MAPS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l2": lambda recon, target: (target - recon) ** 2,
    "l1": lambda recon, target: (target - recon).abs(),
}


def flip_log(values: torch.Tensor, max_over: str, detach: bool, eps: float) -> torch.Tensor:
    """-log(1 - v / max(v) * (1 - eps)): LMSE eq. 15-16 and LAMP eq. 1-2, elementwise.

    Args:
        values: non-negative loss map [B, ...].
        max_over: "batch" (one max) or "sample" (a max per sample).
        detach: whether the max is treated as a constant by autograd.
        eps: keeps the largest element finite.
    """
    if max_over == "batch":
        peak = values.max()
    elif max_over == "sample":
        peak = values.flatten(1).max(dim=1).values.view(-1, *[1] * (values.dim() - 1))
    else:
        raise ValueError(f"max_over {max_over!r} is not allowed; choose from ['batch', 'sample']")
    peak = peak.detach() if detach else peak
    # A perfect reconstruction has peak 0: the clamp keeps 0/0 out (the loss is then 0).
    scaled = values / peak.clamp_min(torch.finfo(values.dtype).tiny) * (1 - eps)
    return -torch.log1p(-scaled)


def lmse(
    out: Output, target: torch.Tensor, max_over: str = "batch", detach: bool = True,
    eps: float = 1e-3,
) -> torch.Tensor:
    """LMSE paper eq. 4 with the scaling of eq. 16: mean of -log(1 - d') per sample."""
    return per_sample_mean(flip_log((target - out.recon) ** 2, max_over, detach, eps))


def lamp(
    out: Output, target: torch.Tensor, base: str = "l2", reduction: str = "sum",
    max_over: str = "batch", detach: bool = True, eps: float = 1e-3,
) -> torch.Tensor:
    """LAMP eq. 1-2: -log(1 - L'_base) summed over H*W*C ("sum", the paper) or averaged
    ("mean"; with base l2 this equals lmse)."""
    if base not in BASE_MAPS:
        raise ValueError(f"lamp base {base!r} is not allowed; choose from {sorted(BASE_MAPS)}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"lamp reduction {reduction!r} is not allowed; choose from sum, mean")
    amplified = flip_log(BASE_MAPS[base](out.recon, target), max_over, detach, eps).flatten(1)
    return amplified.sum(dim=1) if reduction == "sum" else amplified.mean(dim=1)


def vae(out: Output, target: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """AE-vs-VAE paper eq. 1: mse - 0.5 * mean(1 + b - a^2 - e^b), with a the mean and b
    the log-variance of the bottleneck (as in the Keras code the paper follows)."""
    if out.mu is None or out.logvar is None:
        raise ValueError("loss 'vae' needs a variational model (e.g. mlp_vae)")
    kl = -0.5 * (1 + out.logvar - out.mu**2 - out.logvar.exp()).mean(dim=1)
    return mse(out, target) + beta * kl


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "mse": mse,
    "mae": mae,
    "l1": mae,
    "msle": msle,
    "lmse": lmse,
    "lamp": lamp,
    "vae": vae,
}
