"""Protocols: how an anomaly-detection task is built from a labelled image set.

Registry: PROTOCOLS, one ProtocolInfo per protocol: how it builds a task, and how many
images that task holds (from the dataset's Layout, for the cost estimate). Test labels
are 1 for anomalies (the positives), 0 for normals. No torch here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from trainables.imageset import ImageSet, Layout
from trainables.validation import draw, split_off


@dataclasses.dataclass(frozen=True)
class Task:
    """What one trial trains and evaluates on."""

    train_x: np.ndarray  # float32 [N, C, H, W]
    test_x: np.ndarray
    test_y: np.ndarray  # int64 [M], 1 = anomaly
    train_y: np.ndarray | None = None  # 1 = anomaly where the protocol knows (contaminated)
    # The validation split (cells with val_fraction > 0; trainables.validation): held-out
    # training images, and held-out anomalies from the train split where the protocol has
    # labelled ones (one_class).
    val_x: np.ndarray | None = None
    val_anomalies: np.ndarray | None = None


def cap(x: np.ndarray, y: np.ndarray, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` rows (0 = all), drawn with the cell's seed, order kept."""
    if not limit or len(x) <= limit:
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(x), limit, replace=False))
    return x[keep], y[keep]


def one_class(
    images: ImageSet, normal_class: int, seed: int, max_train: int = 0, max_test: int = 0,
    val_fraction: float = 0.0, **_,
) -> Task:
    """Train on the normal class of the train split; test on the whole test split. With
    ``val_fraction``, that share of the normal training images (before the max_train cap)
    and as many train-split images of other classes form the validation split.

    Raises:
        ValueError: when the normal class is absent from either split, or the dataset
            has no test split.
    """
    if not len(images.y_test):
        raise ValueError("protocol one_class needs a test split and this dataset has none "
                         "(splits: train); use splits: both, or protocol contaminated")
    for split, labels in (("train", images.y_train), ("test", images.y_test)):
        if not np.any(labels == normal_class):
            raise ValueError(
                f"normal_class {normal_class} has no images in the {split} split; "
                f"classes there: {sorted(set(labels.tolist()))}"
            )
    train_x = images.x_train[images.y_train == normal_class]
    keep, held = split_off(len(train_x), val_fraction)
    val_x = train_x[held] if len(held) else None
    train_x = train_x[keep] if len(held) else train_x
    train_x, _ = cap(train_x, np.zeros(len(train_x), np.int64), max_train, seed)
    test_x, test_y = cap(
        images.x_test, (images.y_test != normal_class).astype(np.int64), max_test, seed
    )
    others = images.x_train[images.y_train != normal_class]
    val_anomalies = draw(others, len(val_x)) if val_x is not None and len(others) else None
    return Task(train_x, test_x, test_y, val_x=val_x, val_anomalies=val_anomalies)


# IAEAD's public code samples a pooled set larger than this down to this many images.
CONTAMINATED_CAP = 12_000


def contaminated(
    images: ImageSet, normal_class: int, seed: int, contamination: float,
    max_train: int = 0, max_test: int = 0, val_fraction: float = 0.0, **_,
) -> Task:
    """IAEAD's unsupervised setting: pool both splits, keep every image of the normal class
    and add int(n_normal * rho / (1 - rho)) anomalies drawn with the cell's seed; at most
    CONTAMINATED_CAP images (or max_train, if smaller) drawn from that pool; train and
    evaluate on the same set (evaluation on a seeded subset of max_test, if given). With
    ``val_fraction``, that share of the pool is held out of training (unlabelled) and the
    evaluation still covers the whole pool.

    Raises:
        ValueError: for rho outside (0, 0.5), or a pool that would hold no anomaly or
            needs more anomalies than the data has.
    """
    if not 0 < contamination < 0.5:
        raise ValueError(
            f"contamination {contamination!r} is not allowed for protocol 'contaminated'; "
            "it must be in (0, 0.5), e.g. 0.05 .. 0.25 as IAEAD"
        )
    labels = np.concatenate([images.y_train, images.y_test])
    normal = np.flatnonzero(labels == normal_class)
    anomalous = np.flatnonzero(labels != normal_class)
    wanted = int(len(normal) * contamination / (1 - contamination))
    if wanted < 1 or wanted > len(anomalous):  # no anomaly (or no normal): nothing to detect
        raise ValueError(
            f"normal_class {normal_class} with contamination {contamination} needs "
            f"{wanted} anomalies besides {len(normal)} normal images; the data has "
            f"{len(anomalous)}" + (" (a pool without anomalies has nothing to detect)"
                                   if wanted < 1 else "")
        )
    rng = np.random.default_rng(seed)
    pool = np.sort(np.concatenate([normal, rng.choice(anomalous, wanted, replace=False)]))
    limit = min(CONTAMINATED_CAP, max_train) if max_train else CONTAMINATED_CAP
    if len(pool) > limit:
        pool = np.sort(rng.choice(pool, limit, replace=False))
    x = pooled(images, pool)
    y = (labels[pool] != normal_class).astype(np.int64)
    test_x, test_y = cap(x, y, max_test, seed)
    keep, held = split_off(len(x), val_fraction)
    if len(held):
        return Task(train_x=x[keep], test_x=test_x, test_y=test_y, train_y=y[keep],
                    val_x=x[held])
    return Task(train_x=x, test_x=test_x, test_y=test_y, train_y=y)


def pooled(images: ImageSet, index: np.ndarray) -> np.ndarray:
    """Rows of train and test stacked (train first), without copying the whole pool."""
    n = len(images.x_train)
    return np.concatenate([images.x_train[index[index < n]], images.x_test[index[index >= n] - n]])


def one_class_size(layout: Layout, contamination: float, max_train: int,
                   max_test: int) -> tuple[float, float]:
    """(training images, test images) of a one_class task on data of ``layout``."""
    n_train = layout.of_one_class(layout.train)
    n_train = min(n_train, max_train) if max_train else n_train
    return n_train, min(layout.test, max_test) if max_test else layout.test


def contaminated_size(layout: Layout, contamination: float, max_train: int,
                      max_test: int) -> tuple[float, float]:
    """(training images, test images) of a contaminated task: one pool, capped."""
    normal = layout.of_one_class(layout.train + layout.test)
    pool = min(CONTAMINATED_CAP, normal / (1 - contamination))
    n_train = min(pool, max_train) if max_train else pool
    return n_train, min(n_train, max_test) if max_test else n_train


@dataclasses.dataclass(frozen=True)
class ProtocolInfo:
    """A protocol: ``build(images, normal_class, seed, contamination, max_train, max_test,
    val_fraction) -> Task`` and ``size(layout, contamination, max_train, max_test)``."""

    build: Callable[..., Task]
    size: Callable[[Layout, float, int, int], tuple[float, float]]


PROTOCOLS: dict[str, ProtocolInfo] = {
    "one_class": ProtocolInfo(one_class, one_class_size),
    "contaminated": ProtocolInfo(contaminated, contaminated_size),
}
