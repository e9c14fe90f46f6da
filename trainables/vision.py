"""Labelled image sets through torchvision: mnist, fashion_mnist, svhn, cifar10, cifar100.

Files live in the data root in torchvision's own layout (``MNIST/raw/...``,
``FashionMNIST/raw/...``, ``train_32x32.mat``, ``cifar-10-batches-py/...``,
``cifar-100-python/...``), so a folder torchvision filled on another machine can be copied
in as is. With ``download: false`` (the default) nothing is fetched, and ``problem`` names
the missing files before any trial starts. ``verify: false`` skips torchvision's MD5 checks
of the SVHN and CIFAR files (for a re-packed copy, or a root a test writes).

``binarize`` (a threshold in (0, 1); 0, the default, keeps the gray images) makes the
images black and white, as the AE-vs-VAE paper's MNIST. ``splits``: "both" (default: the
train and test splits, which protocol ``contaminated`` pools, as IAEAD's public code) or
"train" (the train split only, an empty test split: IAEAD's paper on SVHN, "we only use
the training set"; protocol ``one_class`` needs a test split and refuses it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from trainables.imageset import ImageSet, Layout, binarized, to_unit_nchw

# Dataset name -> the torchvision class that reads it.
SOURCES: dict[str, str] = {
    "mnist": "MNIST",
    "fashion_mnist": "FashionMNIST",
    "svhn": "SVHN",
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
}
IDX_SETS = ("mnist", "fashion_mnist")  # idx files, accepted gzipped as distributed
SPLITS = ("both", "train")
# What each set holds (cifar100: its 20 coarse classes, as IAEAD uses them).
LAYOUTS: dict[str, Layout] = {
    "mnist": Layout(60000, 10000, 10, (1, 28, 28)),
    "fashion_mnist": Layout(60000, 10000, 10, (1, 28, 28)),
    "svhn": Layout(73257, 26032, 10, (3, 32, 32)),
    "cifar10": Layout(50000, 10000, 10, (3, 32, 32)),
    "cifar100": Layout(50000, 10000, 20, (3, 32, 32)),
}


def layout(name: str, root: Path, params: dict) -> Layout:
    """What the set holds with these parameters (``splits: train``: no test images)."""
    if params.get("splits", "both") == "train":
        return dataclasses.replace(LAYOUTS[name], test=0)
    return LAYOUTS[name]


def source_class(name: str, verify: bool = True) -> type:
    """The torchvision dataset class; with verify=False a subclass whose file list carries
    no MD5 sums, so torchvision checks only that each file exists."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, SOURCES[name])
    if verify:
        return cls
    attrs: dict = {}
    if hasattr(cls, "split_list"):  # SVHN: split -> [url, filename, md5]
        attrs["split_list"] = {k: [url, f, None] for k, (url, f, _) in cls.split_list.items()}
    if hasattr(cls, "train_list"):  # CIFAR: [[filename, md5], ...] and a meta file
        attrs["train_list"] = [[f, None] for f, _ in cls.train_list]
        attrs["test_list"] = [[f, None] for f, _ in cls.test_list]
        attrs["meta"] = {**cls.meta, "md5": None}
    # The same class name: MNIST-style classes derive their folder from it.
    return type(cls.__name__, (cls,), attrs)


def expected_files(name: str, root: Path) -> list[Path]:
    """Every file the loader reads, in torchvision's layout under ``root``."""
    cls = source_class(name)
    if name in IDX_SETS:
        raw = root / cls.__name__ / "raw"
        return [raw / Path(f).stem for f, _ in cls.resources]
    if name == "svhn":
        return [root / cls.split_list[s][1] for s in ("train", "test")]
    folder = root / cls.base_folder
    files = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    return [folder / f for f in files]


def absent(name: str, root: Path) -> list[Path]:
    """Expected files that are missing (an idx file counts as present when gzipped)."""
    def present(path: Path) -> bool:
        gz = path.with_name(path.name + ".gz")
        return path.is_file() or (name in IDX_SETS and gz.is_file())

    return [p for p in expected_files(name, root) if not present(p)]


def problem(name: str, root: Path, params: dict) -> str:
    """Why the loader would fail for want of files ('' when it would not): the missing
    files and how to get them. Downloads are checked when they happen, not here."""
    if params.get("download", False):
        return ""
    missing = absent(name, root)
    if not missing:
        return ""
    shown = ", ".join(str(p.relative_to(root)) for p in missing)
    return (
        f"dataset {name!r} has download: false and {len(missing)} file(s) are missing "
        f"under data root {str(root)!r}: {shown}. Set download: true in the dataset's "
        f"parameters ({{name: {name}, download: true}}) to fetch them through torchvision, or "
        f"fetch them on a machine with internet (python -c \"import torchvision; "
        f"torchvision.datasets.{SOURCES[name]}('DIR', download=True)\") and copy DIR's "
        f"contents into the data root (set by run.data_root or $ADSTUDY_DATA)."
    )


@contextlib.contextmanager
def root_lock(root: Path, name: str, writing: bool) -> Iterator[None]:
    """One writer per data root and dataset, so trials starting together on one machine
    do not download or unpack into the same files at once. Read-only use takes no lock
    (a shared data root may be read-only)."""
    if not writing:
        yield
        return
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".adstudy-{name}.lock")):
        yield


def unpack_idx(name: str, root: Path) -> bool:
    """Unzips idx files present only as .gz (torchvision reads them unpacked).
    Returns whether anything needs unpacking."""
    from torchvision.datasets.utils import extract_archive

    todo = [p for p in expected_files(name, root) if not p.is_file()]
    todo = [p.with_name(p.name + ".gz") for p in todo if p.with_name(p.name + ".gz").is_file()]
    for gz in todo:
        extract_archive(str(gz), str(gz.parent))
    return bool(todo)


def read_split(name: str, root: Path, train: bool, download: bool, verify: bool):
    """One split's images (uint8, as torchvision holds them) and integer labels."""
    cls = source_class(name, verify)
    if name == "svhn":
        data = cls(str(root), split="train" if train else "test", download=download)
        return data.data, np.asarray(data.labels)
    data = cls(str(root), train=train, download=download)
    images = data.data.numpy() if hasattr(data.data, "numpy") else data.data
    if name == "cifar100":  # the 20 coarse classes, read from the same pickled batches
        return images, coarse_labels(root, cls, train)
    return images, np.asarray(data.targets)


def coarse_labels(root: Path, cls: type, train: bool) -> np.ndarray:
    """CIFAR-100's superclass labels, in the order torchvision reads the batches."""
    labels: list[int] = []
    for filename, _ in cls.train_list if train else cls.test_list:
        with open(root / cls.base_folder / filename, "rb") as f:
            labels.extend(pickle.load(f, encoding="latin1")["coarse_labels"])
    return np.asarray(labels)


def class_names(name: str, root: Path) -> tuple[str, ...]:
    cls = source_class(name)
    if name in IDX_SETS:
        return tuple(cls.classes)
    if name == "svhn":
        return tuple(str(i) for i in range(10))
    key = "coarse_label_names" if name == "cifar100" else cls.meta["key"]
    with open(root / cls.base_folder / cls.meta["filename"], "rb") as f:
        return tuple(pickle.load(f, encoding="latin1")[key])


def load_torchvision(name: str, root: Path, download: bool = False, verify: bool = True,
                     binarize: float = 0.0, splits: str = "both"):
    """Both splits of a torchvision set (or, with splits "train", the train split and an
    empty test split) as an ImageSet of float32 NCHW images in [0, 1].

    Raises:
        FileNotFoundError: with download false and files missing, naming them.
        ValueError: for an unknown splits value.
    """
    if splits not in SPLITS:
        raise ValueError(f"dataset {name} splits {splits!r} is not allowed; choose from "
                         f"{list(SPLITS)}")
    root = Path(root).expanduser()
    message = problem(name, root, {"download": download})
    if message:
        raise FileNotFoundError(message)
    needs_unpack = name in IDX_SETS and any(
        not p.is_file() for p in expected_files(name, root)
    )
    with root_lock(root, name, writing=download or needs_unpack):
        if name in IDX_SETS:
            unpack_idx(name, root)
        try:
            x_tr, y_tr = read_split(name, root, True, download, verify)
            x_te, y_te = read_split(name, root, False, download, verify)
        except RuntimeError as err:  # torchvision's "not found or corrupted"
            raise RuntimeError(
                f"torchvision could not read dataset {name!r} under {str(root)!r} ({err}). "
                "Its files are present, so their MD5 sums differ from the official release: "
                "delete them and set download: true, or set verify: false to read them as they are"
            ) from err
    if splits == "train":
        x_te, y_te = x_te[:0], y_te[:0]
    images = ImageSet(
        to_unit_nchw(x_tr), y_tr.astype(np.int64), to_unit_nchw(x_te), y_te.astype(np.int64),
        class_names(name, root),
    )
    return binarized(images, binarize)
