"""The labelled image set every dataset loader returns, what a dataset holds without its
images (Layout), and image-layout and data-root helpers. No torch here."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Shape = tuple[int, int, int]  # C, H, W


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """A labelled image set with its own train/test split."""

    x_train: np.ndarray  # float32 [N, C, H, W] in [0, 1]
    y_train: np.ndarray  # int64 [N]
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Layout:
    """What a dataset holds, known without reading its images (the probe reads the
    shape, the cost estimate the sizes)."""

    train: int  # images in the train split
    test: int  # images in the test split
    classes: int
    shape: Shape  # one image, as the loader returns it
    # One class's share of the images when it is not 1 / classes (lines2x2: 4 of 16).
    normal_share: float | None = None

    def of_one_class(self, images: int) -> float:
        """How many of ``images`` belong to one (normal) class."""
        return images / self.classes if self.normal_share is None else images * self.normal_share


def binarized(images: ImageSet, threshold: float) -> ImageSet:
    """Black and white images: 1 where a pixel is above ``threshold``, else 0 (0 = the
    images unchanged). The AE-vs-VAE paper's appendix trains on such an MNIST."""
    if not threshold:
        return images
    if not 0 < threshold < 1:
        raise ValueError(f"binarize {threshold!r} is not allowed; it must be in [0, 1) "
                         "(0: gray images as they are)")
    return dataclasses.replace(
        images, x_train=(images.x_train > threshold).astype(np.float32),
        x_test=(images.x_test > threshold).astype(np.float32))


def to_unit_nchw(x: np.ndarray) -> np.ndarray:
    """Images of any common layout ([N,H,W], [N,H,W,C], [N,C,H,W]) as float32 NCHW in [0,1]."""
    x = np.asarray(x)
    scale = 255.0 if x.dtype == np.uint8 or x.size and x.max() > 1.0 else 1.0
    x = x.astype(np.float32) / scale
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    if x.ndim == 4:
        return x
    raise ValueError(f"images must have 3 or 4 dimensions, got shape {x.shape}")


def nchw_shape(shape: tuple[int, ...]) -> Shape:
    """One image's [C, H, W] once to_unit_nchw has read an array of ``shape``."""
    return tuple(to_unit_nchw(np.zeros((1, *shape[1:]), np.float32)).shape[1:])


def data_path(root: str | Path, path: str) -> Path:
    """A path a dataset parameter names: absolute as given, else relative to the data root."""
    full = Path(str(path)).expanduser()
    return full if full.is_absolute() else Path(root).expanduser() / full


def loader_param(loader: Callable, params: dict, name: str) -> Any:
    """A loader parameter as the loader sees it: the spec's value, else its default."""
    if name in params:
        return params[name]
    return inspect.signature(loader).parameters[name].default
