"""A full-size MNIST in torchvision's layout, RESAMPLED from the shipped 5,000-image subset.

NOT real full MNIST. Where the real 70,000 images cannot be had (no internet here, nor on
the GPU machines), this writes files of MNIST's shape and class counts, under the names
torchvision reads (``DIR/MNIST/raw/train-images-idx3-ubyte`` ...), so that a preset with
``dataset: mnist`` (configs/lmse_mnist_full.yaml) runs on them with ``ADSTUDY_DATA=DIR``:
60,000 training and 10,000 test 28x28 images with MNIST's own counts per digit, each a
real image of ../shared/data/mnist5k.npz shifted by up to 2 pixels (zero fill). 100 of
each digit's 500 source images are kept for the test split and never used for training,
so no test image is a shifted copy of a training image. AUROCs on it are not the paper's
(far fewer distinct digits): it is a workload of the right size for timing a whole grid,
not a replication dataset. Write it to a scratch folder, never beside a real MNIST.

    python -m bench.mnist_full DIR [--source mnist5k.npz] [--scale 0.01]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.common import MNIST5K

# Real MNIST's images per digit in its training and test splits (60,000 and 10,000).
TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
HELD_OUT = 0.2  # of each digit's source images, kept for the test split
MAX_SHIFT = 2
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def shifted(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image moved by up to MAX_SHIFT pixels each way, zeros filling in (one slice
    assignment per shift, for all images drawn to move by it)."""
    out = np.zeros_like(images)
    dy, dx = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, (2, len(images)))
    h, w = images.shape[1:]
    for a in range(-MAX_SHIFT, MAX_SHIFT + 1):
        for b in range(-MAX_SHIFT, MAX_SHIFT + 1):
            which = np.flatnonzero((dy == a) & (dx == b))
            src = images[which, max(0, -a) : h - max(0, a), max(0, -b) : w - max(0, b)]
            out[which, max(0, a) : h - max(0, -a), max(0, b) : w - max(0, -b)] = src
    return out


def build(x: np.ndarray, y: np.ndarray, scale: float = 1.0, seed: int = 0
          ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """{"train": (images, labels, source index in ``x``), "test": (...)}: MNIST's counts
    per digit times ``scale`` (at least 2 a digit), test images drawn only from each
    digit's held-out source images."""
    rng = np.random.default_rng(seed)
    sources: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    for digit in range(10):
        pool = rng.permutation(np.flatnonzero(y == digit))
        cut = max(1, int(len(pool) * HELD_OUT))
        for split, members, counts in (("test", pool[:cut], TEST_COUNTS),
                                       ("train", pool[cut:], TRAIN_COUNTS)):
            sources[split].append(rng.choice(members, max(2, round(counts[digit] * scale))))
    out = {}
    for split, parts in sources.items():
        source = rng.permutation(np.concatenate(parts))
        out[split] = (shifted(x[source], rng), y[source].astype(np.uint8), source)
    return out


def write_idx(folder: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """MNIST's idx files (big-endian header, then the bytes), as torchvision reads them."""
    image_file, label_file = FILES[split]
    n, h, w = images.shape
    (folder / image_file).write_bytes(np.array([2051, n, h, w], ">i4").tobytes()
                                      + images.astype(np.uint8).tobytes())
    (folder / label_file).write_bytes(np.array([2049, n], ">i4").tobytes()
                                      + labels.astype(np.uint8).tobytes())


def write(root: Path, source: Path = MNIST5K, scale: float = 1.0) -> dict[str, int]:
    """Writes the resampled set under ``root``/MNIST/raw; returns images per split."""
    if not source.is_file():
        raise FileNotFoundError(f"source {source} not found (the shipped subset "
                                "../shared/data/mnist5k.npz, or $ADSTUDY_MNIST5K)")
    with np.load(source) as data:
        x, y = data["x"], data["y"].astype(np.int64)
    folder = root / "MNIST" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for split, (images, labels, _) in build(x, y, scale).items():
        write_idx(folder, split, images, labels)
        sizes[split] = len(images)
    (root / "MNIST" / "RESAMPLED.txt").write_text(
        f"NOT real MNIST: resampled from {source.name} by bench/mnist_full.py "
        f"(shifts up to {MAX_SHIFT} px), scale {scale}\n")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a scratch data root (gets MNIST/raw/...)")
    parser.add_argument("--source", type=Path, default=MNIST5K,
                        help="the real subset (arrays x uint8 [N, 28, 28], y)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of MNIST's size (1: 60,000 + 10,000; tests: 0.01)")
    args = parser.parse_args()
    try:
        sizes = write(args.root, args.source, args.scale)
    except FileNotFoundError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"wrote {args.root}/MNIST/raw: {sizes['train']:,} training and {sizes['test']:,} "
          f"test images resampled from {args.source.name} (shifted up to {MAX_SHIFT} px): "
          "NOT real full MNIST")


if __name__ == "__main__":
    main()
