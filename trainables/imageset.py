"""The labelled image set every dataset loader returns, and image-layout helpers."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """A labelled image set with its own train/test split."""

    x_train: np.ndarray  # float32 [N, C, H, W] in [0, 1]
    y_train: np.ndarray  # int64 [N]
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]


def to_unit_nchw(x: np.ndarray) -> np.ndarray:
    """Images of any common layout ([N,H,W], [N,H,W,C], [N,C,H,W]) as float32 NCHW in [0,1]."""
    x = np.asarray(x)
    scale = 255.0 if x.dtype == np.uint8 or x.max() > 1.0 else 1.0
    x = x.astype(np.float32) / scale
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    if x.ndim == 4:
        return x
    raise ValueError(f"images must have 3 or 4 dimensions, got shape {x.shape}")
