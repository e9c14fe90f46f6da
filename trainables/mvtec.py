"""MVTec AD: one category folder a user points at, read offline.

Layout (as the dataset ships): ``train/good/*.png`` (normal images only),
``test/good/*.png`` and ``test/<defect>/*.png``, ``ground_truth/<defect>/*_mask.png``.
Labels: 0 = good; 1, 2, ... = the defect types in sorted order (the classes tuple names
them), so ``one_class`` with normal_class 0 trains on train/good and counts every defect
as an anomaly. The pixel masks in ground_truth are not read: metrics are per image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainables.imageset import ImageSet, Layout, data_path, loader_param

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MODES = {1: "L", 3: "RGB"}  # channels -> PIL mode


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)


def problem(root: Path, params: dict) -> str:
    """Why the loader would fail for want of files ('' when it would not)."""
    path = params.get("path", "")
    if not path:
        return "dataset 'mvtec' needs a 'path' parameter: {name: mvtec, path: DIR/bottle}"
    folder = data_path(root, path)
    for sub in ("train/good", "test"):
        if not (folder / sub).is_dir() or not any((folder / sub).iterdir()):
            return (
                f"dataset 'mvtec': {str(folder / sub)!r} is missing or empty; point 'path' "
                "at one MVTec AD category folder (train/good, test/<defect>, ground_truth), "
                "from https://www.mvtec.com/company/research/datasets/mvtec-ad (download it "
                "there by hand: the licence does not allow fetching it for you)"
            )
    return ""


def read_images(files: list[Path], size: int, channels: int) -> np.ndarray:
    """float32 [N, C, size, size] in [0, 1], resized with bilinear filtering."""
    from PIL import Image

    out = np.empty((len(files), channels, size, size), np.float32)
    for i, file in enumerate(files):
        with Image.open(file) as img:
            img = img.convert(MODES[channels]).resize((size, size), Image.Resampling.BILINEAR)
            pixels = np.asarray(img, np.float32) / 255.0
        out[i] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    return out


def load_mvtec(root: Path, path: str = "", size: int = 128, channels: int = 3) -> ImageSet:
    """One MVTec AD category, every image resized to ``size`` x ``size`` pixels.

    Args:
        root: the data root (``path`` may be relative to it).
        path: the category folder, e.g. ``mvtec_ad/bottle``.
        size: side in pixels after resizing (the LAMP paper does not give its resolution).
        channels: 3 (RGB) or 1 (grey; several categories ship grey images).
    Raises:
        FileNotFoundError: when the folder lacks train/good or test.
        ValueError: for a size < 1 or channels other than 1 or 3.
    """
    if channels not in MODES:
        raise ValueError(f"mvtec channels {channels!r} is not allowed; choose from [1, 3]")
    if size < 1:
        raise ValueError(f"mvtec size {size!r} is not allowed; it must be >= 1")
    message = problem(root, {"path": path})
    if message:
        raise FileNotFoundError(message)
    folder = data_path(root, path)
    defects = sorted(d.name for d in (folder / "test").iterdir() if d.is_dir() and d.name != "good")
    classes = ("good", *defects)
    test_files: list[Path] = []
    test_labels: list[int] = []
    for label, kind in enumerate(classes):
        if (folder / "test" / kind).is_dir():
            found = images_in(folder / "test" / kind)
            test_files += found
            test_labels += [label] * len(found)
    train_files = images_in(folder / "train" / "good")
    return ImageSet(
        read_images(train_files, size, channels), np.zeros(len(train_files), np.int64),
        read_images(test_files, size, channels), np.asarray(test_labels, np.int64), classes,
    )


def layout(root: Path, params: dict) -> Layout:
    """MVTec AD's mean category (3,629 train and 1,725 test images over 15 categories), at
    the spec's size and channels; good and the defects counted as two classes."""
    size, channels = (loader_param(load_mvtec, params, n) for n in ("size", "channels"))
    return Layout(242, 115, 2, (int(channels), int(size), int(size)))
