"""Protocols: how an anomaly-detection task is built from a labelled image set.

Registry: PROTOCOLS. Test labels are 1 for anomalies (the positives), 0 for normals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from trainables.datasets import ImageSet


@dataclasses.dataclass(frozen=True)
class Task:
    """What one trial trains and evaluates on."""

    train_x: np.ndarray  # float32 [N, C, H, W]
    test_x: np.ndarray
    test_y: np.ndarray  # int64 [M], 1 = anomaly
    train_y: np.ndarray | None = None  # 1 = anomaly where the protocol knows (contaminated)


def cap(x: np.ndarray, y: np.ndarray, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` rows (0 = all), drawn with the cell's seed, order kept."""
    if not limit or len(x) <= limit:
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(x), limit, replace=False))
    return x[keep], y[keep]


def one_class(
    images: ImageSet, normal_class: int, seed: int, max_train: int = 0, max_test: int = 0, **_
) -> Task:
    """Train on the normal class of the train split; test on the whole test split.

    Raises:
        ValueError: when the normal class is absent from either split.
    """
    for split, labels in (("train", images.y_train), ("test", images.y_test)):
        if not np.any(labels == normal_class):
            raise ValueError(
                f"normal_class {normal_class} has no images in the {split} split; "
                f"classes there: {sorted(set(labels.tolist()))}"
            )
    train_x = images.x_train[images.y_train == normal_class]
    train_x, _ = cap(train_x, np.zeros(len(train_x), np.int64), max_train, seed)
    test_x, test_y = cap(
        images.x_test, (images.y_test != normal_class).astype(np.int64), max_test, seed
    )
    return Task(train_x, test_x, test_y)


PROTOCOLS: dict[str, Callable[..., Task]] = {"one_class": one_class}
