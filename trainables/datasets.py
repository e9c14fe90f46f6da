"""Labelled image sets. Registry: DATASETS, one DatasetInfo record per dataset.

Every loader takes the data root and its own parameters and returns an ImageSet of
float32 images in [0, 1], shaped [N, C, H, W], with integer class labels. Embedded sets
(digits, lines, lines2x2) need no files; npz reads a user's arrays (trainables.embedded);
the torchvision sets (trainables.vision) and mvtec (trainables.mvtec) read files that
the record's ``files`` check looks for before any trial starts. Importing this module
imports no torch: the driver reads the records (study.probe, study.cost, study.checks).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from pathlib import Path

from trainables import embedded, mvtec, vision
from trainables.cell import canonical_json
from trainables.imageset import ImageSet, Layout

__all__ = ["DATASETS", "DatasetInfo", "ImageSet", "Layout", "image_shape", "load_dataset"]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Everything the study knows about one dataset, in one place.

    Attributes:
        loader: (data root, **params) -> ImageSet.
        classes: the labels a spec may name as normal_class (None: known from the data).
        layout: (data root, params) -> Layout (sizes and image shape) without reading the
            images; None when it cannot be known here (an npz file on workers only).
        files: (data root, params) -> why loading would fail for want of files ('' =
            it would not); None for a dataset that reads no files.
    """

    loader: Callable[..., ImageSet]
    classes: tuple[int, ...] | None
    layout: Callable[[Path, dict], Layout | None]
    files: Callable[[Path, dict], str] | None


def _fixed(layout: Layout) -> Callable[[Path, dict], Layout]:
    return lambda root, params: layout


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(embedded.load_digits, tuple(range(10)),
                          _fixed(Layout(1198, 599, 10, (1, 8, 8))), None),
    "lines": DatasetInfo(embedded.load_lines, (0, 1), embedded.lines_layout, None),
    "lines2x2": DatasetInfo(embedded.load_lines2x2, (0, 1),
                            _fixed(Layout(16, 16, 2, (1, 2, 2), normal_share=0.25)), None),
    "npz": DatasetInfo(embedded.load_npz, None, embedded.npz_layout, embedded.npz_problem),
    # mnist, fashion_mnist, svhn, cifar10, cifar100 (its 20 coarse classes, as IAEAD)
    **{name: DatasetInfo(functools.partial(vision.load_torchvision, name),
                         tuple(range(vision.LAYOUTS[name].classes)),
                         functools.partial(vision.layout, name),
                         functools.partial(vision.problem, name))
       for name in vision.SOURCES},
    # only 'good' can be the normal class; 1.. are the defect types
    "mvtec": DatasetInfo(mvtec.load_mvtec, (0,), mvtec.layout, mvtec.problem),
}


def image_shape(cell, root: str | None) -> tuple[int, int, int] | None:
    """[C, H, W] of the cell's images, from its dataset's record without reading the
    images (None: unknown here, e.g. an npz file with no data root to look in)."""
    if cell.dataset == "npz" and root is None:
        return None
    layout = DATASETS[cell.dataset].layout(Path(root or "."), cell.params("dataset"))
    return None if layout is None else layout.shape


def load_dataset(name: str, root: str | Path, params: dict) -> ImageSet:
    """Looks a dataset up by name and loads it, once per process (trials of a reused Ray
    actor share it; ImageSet arrays are never written to).

    Raises:
        KeyError: for an unknown name, listing the choices.
    """
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
    return _load_cached(name, str(Path(root).expanduser()), canonical_json(params))


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, root: str, params_json: str) -> ImageSet:
    images = DATASETS[name].loader(Path(root), **json.loads(params_json))
    for array in (images.x_train, images.y_train, images.x_test, images.y_test):
        array.flags.writeable = False
    return images
