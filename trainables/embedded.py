"""The datasets that need no download: digits, lines, lines2x2 (embedded) and npz (a
user's arrays). Each has a loader, and a layout read without loading the images."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from trainables.imageset import (
    ImageSet,
    Layout,
    binarized,
    data_path,
    loader_param,
    nchw_shape,
    to_unit_nchw,
)


def stratified_split(
    x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A fixed-seed stratified split, so every cell of every study sees the same split."""
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    return x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64)


def load_digits(root: Path, test_fraction: float = 1 / 3) -> ImageSet:
    """scikit-learn's 1,797 8x8 handwritten digits (pixel values 0-16), split 2:1."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    x_tr, y_tr, x_te, y_te = stratified_split(x, bunch.target, test_fraction)
    return ImageSet(x_tr, y_tr, x_te, y_te, tuple(str(i) for i in range(10)))


def half_planes(angles: np.ndarray, offsets: np.ndarray, size: int) -> np.ndarray:
    """Black/white images split by a line at each angle, shifted from the centre (pixels)."""
    coords = np.arange(size, dtype=np.float32) - (size - 1) / 2
    xx, yy = np.meshgrid(coords, coords)
    normal_x, normal_y = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    side = xx[None] * normal_x + yy[None] * normal_y - offsets[:, None, None]
    return (side > 0).astype(np.float32)[:, None]


def load_lines(
    root: Path, n_train: int = 1000, n_test: int = 500, size: int = 32, seed: int = 0
) -> ImageSet:
    """The AE-vs-VAE paper's images: a line through the centre at a random slope splits
    white from black (class 0). Class 1, the anomalies, are lines that miss the centre by
    3 to size/4 pixels. Both splits hold both classes in equal numbers."""
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % 2
        shift = rng.uniform(3, size / 4, n) * rng.choice([-1, 1], n)
        images = half_planes(rng.uniform(0, 2 * np.pi, n), np.where(labels, shift, 0.0), size)
        return images, labels.astype(np.int64)

    x_tr, y_tr = draw(2 * n_train)
    x_te, y_te = draw(n_test)
    return ImageSet(x_tr, y_tr, x_te, y_te, ("line", "offset_line"))


def lines_layout(root: Path, params: dict) -> Layout:
    n_train, n_test, size = (loader_param(load_lines, params, name)
                             for name in ("n_train", "n_test", "size"))
    return Layout(2 * n_train, n_test, 2, (1, int(size), int(size)))


# The paper's four 2x2 images (row-major pixels): lines at multiples of 90 degrees.
LINES_2X2 = ((0, 0, 1, 1), (1, 0, 1, 0), (1, 1, 0, 0), (0, 1, 0, 1))


def load_lines2x2(root: Path) -> ImageSet:
    """All 16 binary 2x2 images; the paper's four are class 0, the other 12 class 1.
    Train and test are the same 16 images (one_class trains on the four)."""
    patterns = np.array([[(i >> b) & 1 for b in (3, 2, 1, 0)] for i in range(16)], np.float32)
    labels = np.array([0 if tuple(p.astype(int)) in LINES_2X2 else 1 for p in patterns])
    x = patterns.reshape(16, 1, 2, 2)
    return ImageSet(x, labels, x.copy(), labels.copy(), ("line", "other"))


def load_npz(root: Path, path: str = "", test_path: str = "", test_fraction: float = 0.2,
             binarize: float = 0.0):
    """A user's arrays: ``x`` (images) and ``y`` (integer labels) in one .npz file, split
    stratified with a fixed seed, or a second file ``test_path`` as the test split.
    Relative paths are taken from the data root. ``binarize``: a threshold in (0, 1) makes
    the images black and white (imageset.binarized; 0 = as they are)."""
    if not path:
        raise ValueError("dataset npz needs a 'path' parameter: {name: npz, path: file.npz}")

    def read(p: str) -> tuple[np.ndarray, np.ndarray]:
        with np.load(data_path(root, p)) as arrays:
            x, y = to_unit_nchw(arrays["x"]), arrays["y"].astype(np.int64)
        if len(x) != len(y):
            raise ValueError(f"dataset npz: {p} holds {len(x)} images (x) but {len(y)} "
                             "labels (y); they must pair one to one")
        return x, y

    x, y = read(path)
    if test_path:
        x_te, y_te = read(test_path)
        x_tr, y_tr = x, y
    else:
        x_tr, y_tr, x_te, y_te = stratified_split(x, y, test_fraction)
    classes = tuple(str(c) for c in np.unique(np.concatenate([y_tr, y_te])))
    return binarized(ImageSet(x_tr, y_tr, x_te, y_te, classes), binarize)


def npz_problem(root: Path, params: dict) -> str:
    """Why load_npz would fail on these files ('' = it would not)."""
    for field in ("path", "test_path"):
        if not params.get(field):
            continue
        full = data_path(root, params[field])
        if not full.is_file():
            return (f"dataset npz: {field} {params[field]!r} not found (looked for {full}); a "
                    "relative path is read from the data root: set run.data_root or "
                    "$ADSTUDY_DATA to the folder that holds it")
        with np.load(full) as arrays:
            missing = sorted({"x", "y"} - set(arrays.files))
        if missing:
            return (f"dataset npz: {full} has no array {' or '.join(missing)} (it needs x: "
                    f"images and y: integer labels; it holds {sorted(arrays.files)})")
    return ""


NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}


def npz_header(file: Path) -> tuple[tuple[int, ...], np.ndarray] | None:
    """(shape of ``x`` from its header, no pixels read; the labels ``y``) of an npz file;
    None when it is not on this machine or not a readable npz."""
    try:
        with zipfile.ZipFile(file) as archive:
            with archive.open("x.npy") as member:
                read = NPY_HEADERS.get(np.lib.format.read_magic(member))
                if read is None:
                    return None
                shape = read(member)[0]
            with archive.open("y.npy") as member:
                labels = np.lib.format.read_array(member)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return (tuple(shape), labels) if len(shape) in (3, 4) else None


def npz_layout(root: Path, params: dict) -> Layout | None:
    """The files' layout (load_npz's split: ``test_path``'s images as the test set, else
    a ``test_fraction`` of ``path``'s) from their headers and labels; None when a file is
    not on this machine or not a readable npz (its trial reports it)."""
    train = npz_header(data_path(root, params.get("path", "")))
    if train is None:
        return None
    (n, *_), labels = train
    if params.get("test_path"):
        test = npz_header(data_path(root, params["test_path"]))
        if test is None:
            return None
        classes = len(np.unique(np.concatenate([labels, test[1]])))
        return Layout(n, test[0][0], classes, nchw_shape(train[0]))
    test_fraction = float(params.get("test_fraction", 0.2))
    return Layout(round(n * (1 - test_fraction)), round(n * test_fraction),
                  len(np.unique(labels)), nchw_shape(train[0]))
