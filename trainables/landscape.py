"""Loss landscapes around a trial's trained weights, as Li et al. (NeurIPS 2018) draw them.

A direction is a random Gaussian tensor per parameter, each filter (a slice along the
first dimension: a conv output channel, a linear unit) rescaled to the norm of the same
filter of the trained weights ("filter normalisation"); parameters of one dimension or
none (biases, batch-norm scales and shifts) get a zero direction, as Li et al.'s plots
(``--xignore biasbn``). The loss is evaluated in eval mode (batch norm uses its running
statistics) on a fixed subset of the cell's own training images, in batches of the same
size for every cell, along 1-D lines theta + a d and on a 2-D grid theta + a d1 + b d2.

Two figures are measured at each point: the cell's objective (its loss, e.g. LAMP) and the
MSE, the common yardstick. ``sharpness`` is the mean relative rise of the objective at
distance ``radius`` along each 1-D direction, (mean(L(theta + r d), L(theta - r d)) -
L(theta)) / |L(theta)| (both ends, so a constant slope cancels: weights that are not yet at
a minimum still get a curvature figure); ``sharpness_mse`` the same on the MSE. Both are
free of the loss's scale, so losses and batch sizes can be compared ("LAMP makes the
landscape steeper": LAMP paper fig. 1 and 3, which drew its encoder's classification
loss; here the autoencoder's own).
A loss with trainer state (iaead) is measured on its reconstruction term: the state (the
SVDD centre) is not saved with the weights.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from trainables.assemble import build_loss, build_model, build_task
from trainables.cell import Cell
from trainables.train import pick_device


@dataclasses.dataclass(frozen=True)
class Options:
    """How a landscape is drawn (the same for every cell of a comparison)."""

    directions: int = 2  # 1-D slices, each along its own random direction
    points: int = 21  # points per 1-D slice, over [-radius, radius]
    grid: int = 11  # points per side of the 2-D grid (0: no 2-D grid)
    radius: float = 1.0  # in units of the filter-normalised direction
    samples: int = 256  # training images the loss is measured on
    batch: int = 128  # images per evaluation batch (LMSE/LAMP's max is per batch)
    seed: int = 0  # of the random directions and of the image subset

    def __post_init__(self) -> None:
        for name in ("directions", "points", "samples", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"landscape {name}: {getattr(self, name)!r} must be >= 1")
        if self.grid < 0 or self.radius <= 0:
            raise ValueError(f"landscape grid {self.grid!r} must be >= 0 and radius "
                             f"{self.radius!r} > 0")


def filter_normalised(params: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """A random direction per parameter, each filter scaled to the weights' filter norm.

    Args:
        params: the trained parameters (their values are read, not changed).
        generator: draws the Gaussian entries (CPU).
    Returns:
        One tensor per parameter, on its device; zero for parameters of dim <= 1.
    """
    out = []
    for p in params:
        if p.dim() <= 1:
            out.append(torch.zeros_like(p))
            continue
        d = torch.randn(p.shape, generator=generator).to(p.device, p.dtype)
        d_norms = d.flatten(1).norm(dim=1).clamp_min(1e-12)
        p_norms = p.detach().flatten(1).norm(dim=1)
        out.append(d * (p_norms / d_norms).view(-1, *[1] * (p.dim() - 1)))
    return out


@torch.no_grad()
def measure(model: nn.Module, loss_fn: Callable, x: torch.Tensor,
            batch: int) -> tuple[float, float]:
    """(mean objective, mean MSE) over the images ``x``, in eval mode, batch by batch."""
    model.eval()
    loss_sum = mse_sum = 0.0
    for part in x.split(batch):
        out = model(part)
        loss_sum += float(loss_fn(out, part).sum())
        mse_sum += float(((out.recon - part) ** 2).flatten(1).mean(1).sum())
    return loss_sum / len(x), mse_sum / len(x)


@dataclasses.dataclass
class LossSurface:
    """A trained model, its objective and images: the loss at theta + sum(c_i d_i)."""

    model: nn.Module
    loss_fn: Callable
    x: torch.Tensor
    batch: int

    def __post_init__(self) -> None:
        self.params = [p for p in self.model.parameters()]
        self.base = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def at(self, steps: list[tuple[float, list[torch.Tensor]]]) -> tuple[float, float]:
        """(objective, MSE) with the weights moved by coefficient x direction for each
        pair in ``steps``; the trained weights are put back afterwards."""
        for i, p in enumerate(self.params):
            p.copy_(self.base[i] + sum(c * d[i] for c, d in steps))
        try:
            return measure(self.model, self.loss_fn, self.x, self.batch)
        finally:
            for p, b in zip(self.params, self.base, strict=True):
                p.copy_(b)


def surface_for(cell: Cell, weights: bytes, data_root: str, options: Options,
                device: str = "cpu") -> LossSurface:
    """The cell's model with its stored weights, its objective and a training subset.

    Raises:
        KeyError: for a model or loss the registries do not hold.
    """
    dev = pick_device(device)
    task = build_task(cell, data_root)
    rng = np.random.default_rng(options.seed)
    keep = np.sort(rng.permutation(len(task.train_x))[: options.samples])
    x = torch.tensor(task.train_x[keep], device=dev)
    model = build_model(cell, x.shape[1:])
    model.load_state_dict(torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True))
    loss_fn, _ = build_loss(cell, stateful=False)  # the state is not saved with the weights
    return LossSurface(model.to(dev), loss_fn, x, options.batch)


def landscape_rows(surface: LossSurface, options: Options) -> Iterator[dict]:
    """Every measured point: kind '1d' (direction i, alpha) or '2d' (alpha, beta)."""
    generator = torch.Generator().manual_seed(options.seed)
    count = max(options.directions, 2 if options.grid else 0)
    directions = [filter_normalised(surface.params, generator) for _ in range(count)]
    alphas = np.linspace(-options.radius, options.radius, options.points)
    for i in range(options.directions):
        for a in alphas:
            loss, mse = surface.at([(float(a), directions[i])])
            yield {"kind": "1d", "direction": i, "alpha": float(a), "beta": 0.0,
                   "loss": loss, "mse": mse}
    grid = np.linspace(-options.radius, options.radius, options.grid)
    for a in grid:
        for b in grid:
            loss, mse = surface.at([(float(a), directions[0]), (float(b), directions[1])])
            yield {"kind": "2d", "direction": -1, "alpha": float(a), "beta": float(b),
                   "loss": loss, "mse": mse}


def sharpness(rows: list[dict], centre: tuple[float, float], radius: float) -> dict[str, float]:
    """Centre values, the mean rise at +-radius along the 1-D slices, and that rise
    relative to the centre (``sharpness`` on the objective, ``sharpness_mse``)."""
    edges = [r for r in rows if r["kind"] == "1d" and abs(abs(r["alpha"]) - radius) < 1e-9]
    out: dict[str, float] = {}
    for (key, name), value in zip((("loss", "sharpness"), ("mse", "sharpness_mse")), centre,
                                  strict=True):
        rise = float(np.mean([r[key] for r in edges])) - value
        out[f"{key}_center"] = value
        out[f"{key}_rise"] = rise
        out[name] = rise / abs(value) if value else float("inf")
    return out


def cell_landscape(cell: Cell, weights: bytes, data_root: str, options: Options,
                   device: str = "cpu") -> tuple[list[dict], dict]:
    """The landscape of one stored trial: (points, summary).

    Returns:
        Every measured point (see landscape_rows) and one summary: the options, the
        centre values and the sharpness figures (see ``sharpness``).
    """
    surface = surface_for(cell, weights, data_root, options, device)
    rows = list(landscape_rows(surface, options))
    figures = sharpness(rows, surface.at([]), options.radius)
    summary = {**dataclasses.asdict(options), "samples": len(surface.x), **figures}
    return rows, summary
