"""Writes small data roots in each dataset's own file format, for the catalogue tests.

MNIST and Fashion-MNIST as idx files (MNIST gzipped, as distributed), SVHN as .mat
(scipy.io.savemat), CIFAR-10/100 as pickled batches, MVTec AD as a category folder of
PNGs. Every image's first pixel is ``(7 * index + 3 * label) % 256`` of its split, so a
test can check that images and labels arrive in order and unchanged.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

# Images per split and the labels they cycle through.
SIZES = {
    "mnist": (40, 20, 10),
    "fashion_mnist": (30, 20, 10),
    "svhn": (30, 20, 10),
    "cifar10": (50, 20, 10),
    "cifar100": (160, 40, 20),  # coarse classes
}


def labels_for(name: str, split: str) -> np.ndarray:
    n_train, n_test, n_classes = SIZES[name]
    return np.arange(n_train if split == "train" else n_test) % n_classes


def images_for(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 images of ``shape`` (per image); a label-dependent pattern, first pixel coded."""
    rng = np.random.default_rng(len(labels))
    x = rng.integers(0, 256, size=(len(labels), *shape), dtype=np.uint8)
    flat = x.reshape(len(labels), -1)
    flat[:, 0] = (7 * np.arange(len(labels)) + 3 * labels) % 256
    return x


def first_pixels(labels: np.ndarray) -> np.ndarray:
    return (7 * np.arange(len(labels)) + 3 * labels) % 256


def write_idx(path: Path, array: np.ndarray, gzipped: bool) -> None:
    """The idx format: magic (0, 0, 0x08 = ubyte, ndim), big-endian int32 dims, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}i", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gzipped:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def write_idx_set(root: Path, name: str, folder: str, gzipped: bool) -> None:
    for split, prefix in (("train", "train"), ("test", "t10k")):
        labels = labels_for(name, split)
        raw = root / folder / "raw"
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images_for(labels, (28, 28)), gzipped)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8), gzipped)


def write_svhn(root: Path) -> None:
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        labels = labels_for("svhn", split)
        x = images_for(labels, (3, 32, 32))  # N, C, H, W as torchvision holds it
        # The .mat layout: X [H, W, C, N]; y [N, 1] with 10 for the digit 0.
        savemat(root / f"{split}_32x32.mat", {
            "X": x.transpose(2, 3, 1, 0), "y": np.where(labels == 0, 10, labels)[:, None],
        })


def pickle_to(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(value, f)


def cifar_images(labels: np.ndarray) -> np.ndarray:
    """[N, 3072] rows (channel-major, as CIFAR stores them)."""
    return images_for(labels, (3, 32, 32)).reshape(len(labels), -1)


def write_cifar10(root: Path) -> None:
    folder = root / "cifar-10-batches-py"
    labels = labels_for("cifar10", "train")
    for i, part in enumerate(np.array_split(np.arange(len(labels)), 5)):
        pickle_to(folder / f"data_batch_{i + 1}", {
            "data": cifar_images(labels)[part], "labels": labels[part].tolist(),
        })
    test = labels_for("cifar10", "test")
    pickle_to(folder / "test_batch", {"data": cifar_images(test), "labels": test.tolist()})
    pickle_to(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})


def write_cifar100(root: Path) -> None:
    folder = root / "cifar-100-python"
    for split in ("train", "test"):
        coarse = labels_for("cifar100", split)
        pickle_to(folder / split, {
            "data": cifar_images(coarse), "coarse_labels": coarse.tolist(),
            "fine_labels": (coarse * 5 + np.arange(len(coarse)) % 5).tolist(),
        })
    pickle_to(folder / "meta", {
        "fine_label_names": [f"f{i}" for i in range(100)],
        "coarse_label_names": [f"super{i}" for i in range(20)],
    })


def write_torchvision_root(root: Path) -> Path:
    """All five torchvision sets under one data root, in torchvision's layout."""
    write_idx_set(root, "mnist", "MNIST", gzipped=True)
    write_idx_set(root, "fashion_mnist", "FashionMNIST", gzipped=False)
    write_svhn(root)
    write_cifar10(root)
    write_cifar100(root)
    return root


# MVTec category: train/good, test/good, test/<defect>, ground_truth/<defect>.
MVTEC_COUNTS = {"train/good": 6, "test/good": 3, "test/crack": 2, "test/scratch": 4}


def write_mvtec(folder: Path, side: int = 40, mode: str = "RGB") -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    channels = 3 if mode == "RGB" else 1
    for sub, n in MVTEC_COUNTS.items():
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 256, size=(side, side, channels), dtype=np.uint8)
            Image.fromarray(pixels.squeeze()).save(folder / sub / f"{i:03d}.png")
            if not sub.endswith("good"):
                mask = folder / "ground_truth" / Path(sub).name / f"{i:03d}_mask.png"
                mask.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.zeros((side, side), np.uint8)).save(mask)
    return folder
