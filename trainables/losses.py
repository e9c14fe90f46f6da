"""Losses. Registry: LOSSES. Each returns per-sample values, shape [B]; the trainer averages.

Signature: ``loss(out, target, **params)`` where ``out`` is the model's Output (losses
that need only the reconstruction read ``out.recon``). Every parameter's default, kind and
allowed range is in trainables/param_records.py (checked when a study file is read).

Scaling defaults for LMSE/LAMP (DESIGN: written down and tested):
    max_over="batch"  the max in eq. 16 / LAMP eq. 2 is over the whole batch's loss map
                      (lmse: "none", see lmse); with detach=False the gradient of the max
                      is split evenly between tied elements (torch.amax)
    detach=True       the max is a constant for the gradient (a rescaling, not a term)
    eps=1e-3          the largest element maps to -log(eps) ~= 6.9
    eps_mode="clamp"  (max_over "none" only) values above 1 - eps are clamped, so an
                      error past that has no gradient; "add" is the LMSE paper's text, eps
                      added to 1 - x: -log(1 - x + eps), a gradient everywhere

SSIM (loss ``ssim`` and ``lamp`` with base ``ssim``) is kornia.metrics.ssim: Wang et al.'s
Gaussian window (sigma 1.5), with no stabilising eps in the denominator (SSIM's c1, c2
keep it positive; kornia's default 1e-12 left 1 - SSIM = 1.1e-5 on identical black
images, which LAMP's eq. 2 scaled up to ~230 per image on a perfect reconstruction).
``padding`` "same" (default): a per-pixel map of H x W with reflect padding, so LAMP can
sum over H*W*C; "valid": only the pixels a whole window covers, (H - w + 1) x (W - w + 1),
Wang's and scikit-image's convention (its mean is their cropped mean SSIM). ``window``
(odd, default 11) is cut to the largest odd size the image allows (2 * min(H, W) - 1 for
"same", min(H, W) for "valid").

Arguments in TRAINER_KEYWORDS come from the trainer, never from a cell: ``value_range``,
the (low, high) range of the images the model sees (trainables.preprocess: [0, 1], or
[-1, 1] for iaead_cae), so msle and SSIM mean the same on either scale; ``state``, the
Deep SVDD centre and radius that ``iaead`` reads (trainables.svdd).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from trainables.models import Output
from trainables.svdd import LAMBDA, NU, WARMUP, SvddState, squared_distance

TRAINER_KEYWORDS = ("value_range", "state")
UNIT = (0.0, 1.0)  # the value range of images in [0, 1]


def per_sample_mean(values: torch.Tensor) -> torch.Tensor:
    return values.flatten(1).mean(dim=1)


def mse(out: Output, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per sample."""
    return per_sample_mean((out.recon - target) ** 2)


def mae(out: Output, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per sample."""
    return per_sample_mean((out.recon - target).abs())


def to_unit(values: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Values on ``value_range`` mapped linearly onto [0, 1]."""
    low, high = value_range
    return values if (low, high) == UNIT else (values - low) / (high - low)


def msle(
    out: Output, target: torch.Tensor, value_range: tuple[float, float] = UNIT
) -> torch.Tensor:
    """LMSE paper eq. 2: mean of (log(1 + y) - log(1 + y_hat))^2, on images mapped to
    [0, 1] from ``value_range`` (the log needs 1 + y > 0; [-1, 1] images would break it)."""
    y, y_hat = to_unit(target, value_range), to_unit(out.recon, value_range)
    return per_sample_mean((torch.log1p(y) - torch.log1p(y_hat)) ** 2)


PADDINGS = ("same", "valid")
EPS_MODES = ("clamp", "add")


def ssim_map(
    recon: torch.Tensor, target: torch.Tensor, window: int = 11,
    value_range: tuple[float, float] = UNIT, padding: str = "same",
) -> torch.Tensor:
    """Per-pixel SSIM, shape [B, C, H, W] ("same") or cropped by the window ("valid"), of
    the images mapped to [0, 1] from ``value_range`` (SSIM's constants and luminance term
    depend on the scale; this way a [-1, 1] model is measured as a [0, 1] one). kornia,
    without its denominator eps; see the module doc for window and padding.

    Raises:
        ValueError: for an even or non-positive window, or an unknown padding.
    """
    from kornia.metrics import ssim

    if window < 1 or window % 2 == 0:
        raise ValueError(f"ssim window {window!r} is not allowed; it must be an odd number >= 1")
    if padding not in PADDINGS:
        raise ValueError(f"ssim padding {padding!r} is not allowed; choose from {list(PADDINGS)}")
    side = min(target.shape[-2:])
    # reflect padding needs pad < side; a valid window must fit in the image
    fit = min(window, 2 * side - 1 if padding == "same" else side - 1 + side % 2)
    return ssim(to_unit(recon, value_range), to_unit(target, value_range), fit, max_val=1.0,
                eps=0.0, padding=padding)


def ssim(
    out: Output, target: torch.Tensor, window: int = 11, padding: str = "same",
    value_range: tuple[float, float] = UNIT,
) -> torch.Tensor:
    """1 - SSIM per sample (the mean of the SSIM map; with padding "valid", Wang's mean)."""
    return per_sample_mean(1 - ssim_map(out.recon, target, window, value_range, padding))


# Per-element loss maps for LAMP, each (recon, target, window, value_range, padding) ->
# [B, C, H', W'] (H' = H but for SSIM with padding "valid").
BASE_MAPS: dict[str, Callable[..., torch.Tensor]] = {
    "l2": lambda recon, target, *_: (target - recon) ** 2,
    "l1": lambda recon, target, *_: (target - recon).abs(),
    # 1 - SSIM lies in [0, 2]; the clamp removes rounding below 0 before the flip-and-log.
    "ssim": lambda recon, target, *a: (1 - ssim_map(recon, target, *a)).clamp_min(0),
}


def flip_log(values: torch.Tensor, max_over: str, detach: bool, eps: float,
             eps_mode: str = "clamp") -> torch.Tensor:
    """-log(1 - v / max(v) * (1 - eps)): LMSE eq. 15-16 and LAMP eq. 1-2, elementwise.

    Args:
        values: non-negative loss map [B, ...].
        max_over: "batch" (one max), "sample" (a max per sample) or "none" (no scaling:
            LMSE eq. 9 for values already in [0, 1]).
        detach: whether the max is treated as a constant by autograd; if not, tied
            maxima share its gradient evenly (amax).
        eps: keeps the largest element finite.
        eps_mode: with max_over "none": "clamp" (values clamped to 1 - eps: no gradient
            above) or "add" (-log(1 - v + eps), the LMSE paper's text; values above 1,
            which 1 - SSIM can reach, count as 1).
    Raises:
        ValueError: for an unknown max_over or eps_mode, or "add" with a scaling max.
    """
    if eps_mode not in EPS_MODES:
        raise ValueError(f"eps_mode {eps_mode!r} is not allowed; choose from {list(EPS_MODES)}")
    if max_over == "none":
        if eps_mode == "add":  # (where, not clamp: clamp passes no gradient at exactly 1)
            return -torch.log1p(eps - torch.where(values > 1, 1.0, values))
        return -torch.log1p(-values.clamp_max(1 - eps))
    if eps_mode != "clamp":
        raise ValueError(f"eps_mode {eps_mode!r} needs max_over 'none' (with max_over "
                         f"{max_over!r} eq. 16's scaling keeps the log finite); use 'clamp'")
    if max_over == "batch":
        peak = values.amax()
    elif max_over == "sample":
        peak = values.flatten(1).amax(dim=1).view(-1, *[1] * (values.dim() - 1))
    else:
        raise ValueError(
            f"max_over {max_over!r} is not allowed; choose from ['batch', 'none', 'sample']"
        )
    peak = peak.detach() if detach else peak
    # A perfect reconstruction has peak 0: the clamp keeps 0/0 out (the loss is then 0).
    scaled = values / peak.clamp_min(torch.finfo(values.dtype).tiny) * (1 - eps)
    return -torch.log1p(-scaled)


def lmse(
    out: Output, target: torch.Tensor, max_over: str = "none", detach: bool = True,
    eps: float = 1e-3, eps_mode: str = "clamp", value_range: tuple[float, float] = UNIT,
) -> torch.Tensor:
    """LMSE paper eq. 4/9: mean of -log(1 - (y - y_hat)^2) per sample, on images mapped to
    [0, 1] from ``value_range``. The default (max_over "none") is the paper's loss for data
    in [0, 1], where every squared error is below 1 already; "batch"/"sample" divide by
    the max first (the paper's eq. 16, meant for losses not bounded by 1). On digits the
    scaled form lost 0.07 mean AUROC to MSE; the plain form matched it (see docs).
    ``eps_mode`` "clamp" (default, as stored studies ran: an error above sqrt(1 - eps)
    has no gradient) or "add" (-log(1 - x + eps), eps where the paper's text puts it)."""
    diff = to_unit(target, value_range) - to_unit(out.recon, value_range)
    return per_sample_mean(flip_log(diff**2, max_over, detach, eps, eps_mode))


def lamp(
    out: Output, target: torch.Tensor, base: str = "l2", reduction: str = "sum",
    max_over: str = "batch", detach: bool = True, eps: float = 1e-3, eps_mode: str = "clamp",
    window: int = 11, padding: str = "same", value_range: tuple[float, float] = UNIT,
) -> torch.Tensor:
    """LAMP eq. 1-2: -log(1 - L'_base) summed over H*W*C ("sum", the paper) or averaged
    ("mean"; with base l2 this equals lmse). ``window`` and ``padding``: base ssim only."""
    if base not in BASE_MAPS:
        raise ValueError(f"lamp base {base!r} is not allowed; choose from {sorted(BASE_MAPS)}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"lamp reduction {reduction!r} is not allowed; choose from sum, mean")
    base_map = BASE_MAPS[base](out.recon, target, window, value_range, padding)
    amplified = flip_log(base_map, max_over, detach, eps, eps_mode).flatten(1)
    return amplified.sum(dim=1) if reduction == "sum" else amplified.mean(dim=1)


KL_WEIGHTS = ("mean", "keras")


def vae(out: Output, target: torch.Tensor, beta: float = 1.0, kl: str = "mean") -> torch.Tensor:
    """AE-vs-VAE paper eq. 1: mse + beta * KL, with KL per latent unit -0.5 * (1 + b - a^2 -
    e^b), a the mean and b the encoder's second output (the log-variance; see mlp_vae's
    ``sampling``). ``kl`` "mean": KL averaged over the latent units, as eq. 1 prints it;
    "keras": summed over them and divided by the pixels D, the Keras example the paper
    follows (D * mse + sum of KL) divided by D, so beta 1 is that example whatever the
    image and latent sizes (it equals "mean" with beta = latent_dim / D)."""
    if out.mu is None or out.logvar is None:
        raise ValueError("loss 'vae' needs a variational model (e.g. mlp_vae)")
    if kl not in KL_WEIGHTS:
        raise ValueError(f"vae kl {kl!r} is not allowed; choose from {list(KL_WEIGHTS)}")
    units = -0.5 * (1 + out.logvar - out.mu**2 - out.logvar.exp())
    term = units.mean(dim=1) if kl == "mean" else units.sum(dim=1) / target[0].numel()
    return mse(out, target) + beta * term


def iaead(
    out: Output, target: torch.Tensor, lam: float = LAMBDA, nu: float = NU,
    warmup: int = WARMUP, state: SvddState | None = None,
) -> torch.Tensor:
    """IAEAD eq. 8: mse + lam * (R^2 + 1/nu * max(0, ||z - c||^2 - R^2)) per sample, so the
    batch mean is eq. 7's soft-boundary term (the reconstruction is per-sample MSE, as the
    public code's nn.MSELoss; eq. 8 writes a norm). Before the trainer's state holds a
    centre (warm-up of ``warmup`` epochs, or no state at all) it is the MSE alone.
    ``warmup`` is read by the trainer (trainables.svdd), not here."""
    recon_term = mse(out, target)
    if state is None or state.center is None:
        return recon_term
    r2 = torch.as_tensor(state.radius, dtype=out.z.dtype, device=out.z.device) ** 2
    outside = torch.relu(squared_distance(out.z, state.center) - r2)
    return recon_term + lam * (r2 + outside / nu)


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "mse": mse,
    "mae": mae,
    "l1": mae,
    "msle": msle,
    "ssim": ssim,
    "lmse": lmse,
    "lamp": lamp,
    "vae": vae,
    "iaead": iaead,
}


def loss_keywords(name: str) -> tuple[str, ...]:
    """The TRAINER_KEYWORDS that loss ``name`` takes."""
    accepted = inspect.signature(LOSSES[name]).parameters
    return tuple(k for k in TRAINER_KEYWORDS if k in accepted)
