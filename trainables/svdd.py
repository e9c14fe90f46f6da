"""IAEAD's Deep SVDD state: the centre c and radius R the trainer owns for loss 'iaead'.

The loss reads the state; the trainer updates it through two hooks (as in IAEAD's public
code, github.com/wogong/pt-iaead):
    after_epoch(epoch, embed)  at the end of warm-up epoch W (W = 0: before the first
                               epoch), c = mean embedding of the training set, entries
                               nearer 0 than 0.1 pushed to +-0.1 (a zero unit is matched
                               trivially by zero weights)
    after_step(z)              R = the (1 - nu) quantile of the batch's distances
                               ||z - c|| after every optimiser step once c exists
Until c exists the loss is the reconstruction term alone (the warm-up).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

# Paper values (IAEAD section 4): lambda = 5e-5, nu = 1 (its code defaults to 0.1), W = 20.
LAMBDA, NU, WARMUP = 5e-5, 1.0, 20
CENTER_EPS = 0.1


def squared_distance(z: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """||z - c||^2 per sample, shape [B]."""
    return ((z - center) ** 2).sum(dim=1)


def init_center(embeddings: torch.Tensor, eps: float = CENTER_EPS) -> torch.Tensor:
    """The mean embedding, entries with |c| < eps pushed to -eps or +eps by their sign
    (an exact 0 stays 0, as in the public code)."""
    c = embeddings.mean(dim=0)
    small = c.abs() < eps
    c = torch.where(small & (c < 0), torch.full_like(c, -eps), c)
    return torch.where(small & (c > 0), torch.full_like(c, eps), c)


def radius(distances: torch.Tensor, nu: float) -> torch.Tensor:
    """The (1 - nu) quantile of the distances sqrt(||z - c||^2) (nu = 1: the smallest)."""
    return torch.quantile(distances.detach().sqrt(), 1 - nu)


@dataclasses.dataclass
class SvddState:
    """Centre, radius and schedule of the SVDD term of one trial."""

    nu: float = NU
    warmup: int = WARMUP
    center: torch.Tensor | None = None
    radius: torch.Tensor | float = 0.0

    @classmethod
    def from_loss_params(cls, nu: float = NU, warmup: int = WARMUP, **_) -> SvddState:
        """The state for a cell's loss parameters (lam is the loss's own)."""
        if not 0 < nu <= 1:
            raise ValueError(f"iaead nu {nu!r} is not allowed; it must be in (0, 1]")
        if warmup < 0:
            raise ValueError(f"iaead warmup {warmup!r} is not allowed; it must be >= 0")
        return cls(nu=float(nu), warmup=int(warmup))

    @property
    def active(self) -> bool:
        return self.center is not None

    def after_epoch(self, epoch: int, embed: Callable[[], torch.Tensor]) -> None:
        """Sets c at the end of warm-up; ``embed`` gives the training set's embeddings."""
        if epoch == self.warmup and self.center is None:
            self.center = init_center(embed().detach())

    def after_step(self, z: torch.Tensor) -> None:
        """Solves R on the batch's embeddings (those of the step's forward pass)."""
        if self.center is not None:
            self.radius = radius(squared_distance(z.detach(), self.center), self.nu)


# Loss name -> the trainer-owned state its loss reads (built from the loss's parameters).
LOSS_STATES: dict[str, Callable[..., SvddState]] = {"iaead": SvddState.from_loss_params}
