"""The dataset and protocol catalogue: torchvision sets read from roots written here in
their own file formats, MVTec AD from a category folder, every dataset through every
protocol, and the missing-file check that runs before any trial."""

from __future__ import annotations

import numpy as np
import pytest
from catalogue_files import (
    MVTEC_COUNTS,
    SIZES,
    images_for,
    labels_for,
    write_mvtec,
    write_torchvision_root,
)

from study.cell import Cell
from study.errors import SpecError
from study.spec import parse_spec
from study.validate import validate_cells
from trainables.datasets import DATASET_CHECKS, DATASET_CLASSES, DATASETS, load_dataset
from trainables.protocols import CONTAMINATED_CAP, PROTOCOLS, contaminated, one_class
from trainables.vision import SOURCES, expected_files

SHAPES = {"mnist": (28, 28), "fashion_mnist": (28, 28), "svhn": (3, 32, 32),
          "cifar10": (3, 32, 32), "cifar100": (3, 32, 32)}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """One data root holding all five torchvision sets, an MVTec category and an npz."""
    root = write_torchvision_root(tmp_path_factory.mktemp("data"))
    write_mvtec(root / "mvtec" / "bottle")
    rng = np.random.default_rng(0)
    np.savez(root / "arrays.npz", x=rng.integers(0, 256, (60, 8, 8), dtype=np.uint8),
             y=np.arange(60) % 3)
    return root


# Every registered dataset with the parameters that read it from data_root.
PARAMS = {
    "digits": {}, "lines": {"n_train": 40, "n_test": 30}, "lines2x2": {},
    "npz": {"path": "arrays.npz"},
    **{name: {"verify": False} for name in SOURCES},
    "mvtec": {"path": "mvtec/bottle", "size": 24},
}


def test_params_cover_every_registered_dataset():
    assert set(PARAMS) == set(DATASETS) == set(DATASET_CLASSES)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_torchvision_sets_arrive_unchanged_and_in_order(name, data_root):
    images = load_dataset(name, data_root, {"verify": False})
    for split, x, y in (("train", images.x_train, images.y_train),
                        ("test", images.x_test, images.y_test)):
        labels = labels_for(name, split)
        assert y.tolist() == labels.tolist()  # SVHN's 10 read as 0; CIFAR-100 coarse
        written = images_for(labels, SHAPES[name]).reshape(x.shape)
        assert x.dtype == np.float32 and np.array_equal(np.rint(x * 255), written)
    assert len(images.classes) == SIZES[name][2]


def test_mnist_is_read_from_gzipped_idx_files(data_root):
    raw = data_root / "MNIST" / "raw"
    assert (raw / "train-images-idx3-ubyte.gz").is_file()
    load_dataset("mnist", data_root, {})  # no MD5 check for idx files
    assert (raw / "train-images-idx3-ubyte").is_file()  # unpacked once, then read


@pytest.mark.parametrize("name", ["svhn", "cifar10", "cifar100"])
def test_md5_checks_reject_files_that_differ_from_the_release(name, data_root):
    with pytest.raises(RuntimeError, match="MD5 sums differ.*verify: false"):
        DATASETS[name](data_root, verify=True)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_missing_files_are_named_with_how_to_get_them(name, tmp_path):
    message = DATASET_CHECKS[name](tmp_path, {"download": False})
    for path in expected_files(name, tmp_path):
        assert str(path.relative_to(tmp_path)) in message
    assert "download: true" in message and f"torchvision.datasets.{SOURCES[name]}" in message
    assert DATASET_CHECKS[name](tmp_path, {"download": True}) == ""
    with pytest.raises(FileNotFoundError, match="are missing"):
        DATASETS[name](tmp_path)


def test_a_study_with_missing_files_fails_before_any_trial(tmp_path, data_root):
    spec = parse_spec("study: s\nfixed:\n  dataset: {name: cifar10, download: false}\n")
    cell = Cell(study="s", dataset="cifar10", dataset_params='{"download":false}')
    with pytest.raises(SpecError, match="cifar-10-batches-py/data_batch_1"):
        validate_cells([cell], str(tmp_path))
    validate_cells([cell], str(data_root))  # present: accepted
    assert spec.run.data_root  # validated against the spec's root by describe / plan


def test_adstudy_data_overrides_the_default_root(monkeypatch):
    monkeypatch.setenv("ADSTUDY_DATA", "/data/here")
    assert parse_spec("study: s\n").run.data_root == "/data/here"
    assert parse_spec("study: s\nrun: {data_root: /x}\n").run.data_root == "/x"
    monkeypatch.delenv("ADSTUDY_DATA")
    assert parse_spec("study: s\n").run.data_root == "~/.cache/adstudy"


def test_mvtec_reads_a_category_folder_resized(data_root):
    images = load_dataset("mvtec", data_root, {"path": "mvtec/bottle", "size": 16})
    assert images.classes == ("good", "crack", "scratch")
    assert images.x_train.shape == (MVTEC_COUNTS["train/good"], 3, 16, 16)
    assert images.y_train.tolist() == [0] * MVTEC_COUNTS["train/good"]
    assert images.y_test.tolist() == [0] * 3 + [1] * 2 + [2] * 4
    grey = load_dataset("mvtec", data_root, {"path": str(data_root / "mvtec/bottle"),
                                             "size": 20, "channels": 1})
    assert grey.x_test.shape == (9, 1, 20, 20) and 0 <= grey.x_test.min() < grey.x_test.max() <= 1


def test_mvtec_names_what_is_missing(tmp_path):
    assert "needs a 'path'" in DATASET_CHECKS["mvtec"](tmp_path, {})
    message = DATASET_CHECKS["mvtec"](tmp_path, {"path": "nowhere/bottle"})
    assert "nowhere/bottle/train/good" in message and "mvtec.com" in message
    with pytest.raises(FileNotFoundError, match="train/good"):
        DATASETS["mvtec"](tmp_path, path="nowhere/bottle")


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.parametrize("name", sorted(PARAMS))
def test_every_dataset_yields_images_and_0_1_labels_with_its_protocols_counts(
    name, protocol, data_root
):
    images = load_dataset(name, data_root, PARAMS[name])
    for x, y in ((images.x_train, images.y_train), (images.x_test, images.y_test)):
        assert x.dtype == np.float32 and x.ndim == 4 and len(x) == len(y)
        assert 0.0 <= x.min() and x.max() <= 1.0
    classes = DATASET_CLASSES[name]
    if classes is not None and name != "mvtec":  # mvtec lists its one normal class, 0
        assert set(np.unique(np.concatenate([images.y_train, images.y_test]))) <= set(classes)
    task = PROTOCOLS[protocol](images, normal_class=0, seed=0, contamination=0.2)
    assert set(np.unique(task.test_y)) == {0, 1}
    n_normal_train = int((images.y_train == 0).sum())
    if protocol == "one_class":
        assert len(task.train_x) == n_normal_train and len(task.test_y) == len(images.y_test)
        assert task.test_y.sum() == (images.y_test != 0).sum()
    else:
        n_normal = n_normal_train + int((images.y_test == 0).sum())
        n_anomalies = int(n_normal * 0.2 / 0.8)
        assert len(task.train_x) == min(n_normal + n_anomalies, CONTAMINATED_CAP)
        assert task.test_y.sum() == n_anomalies and task.test_x is task.train_x


def pool(n_per_class: int = 1000, classes: int = 10):
    """A labelled set with each image's own index as its only pixel."""
    from trainables.imageset import ImageSet

    y = np.arange(n_per_class * classes) % classes
    x = np.arange(len(y), dtype=np.float32).reshape(-1, 1, 1, 1) / len(y)
    half = len(y) // 2
    return ImageSet(x[:half], y[:half], x[half:], y[half:], tuple(map(str, range(classes))))


@pytest.mark.parametrize("rho", [0.05, 0.1, 0.15, 0.2, 0.25])
def test_contaminated_anomaly_share_matches_rho(rho):
    images = pool()
    task = contaminated(images, normal_class=3, seed=1, contamination=rho)
    assert len(task.train_y) == 1000 + int(1000 * rho / (1 - rho))
    assert task.train_y.mean() == pytest.approx(rho, abs=1e-3)
    # The labels are true: an image's pixel is its pooled index, whose class is index % 10.
    index = np.rint(task.train_x.ravel() * 10_000).astype(int)
    assert np.array_equal(task.train_y, (index % 10 != 3).astype(int))
    # Both splits are pooled; the draw follows the seed.
    assert index.min() < 5000 <= index.max()
    again = contaminated(images, normal_class=3, seed=1, contamination=rho)
    other = contaminated(images, normal_class=3, seed=2, contamination=rho)
    assert np.array_equal(again.train_x, task.train_x)
    assert not np.array_equal(other.train_x, task.train_x)


def test_contaminated_caps_the_pool_and_honours_max_train_and_max_test():
    images = pool(n_per_class=2000)  # 2,000 normals + 500 anomalies at rho 0.2
    assert len(contaminated(images, 0, 0, 0.2).train_x) == 2500
    big = pool(n_per_class=12_000, classes=2)  # 12,000 normals + 3,000 anomalies
    capped = contaminated(big, 0, 0, 0.2)
    assert len(capped.train_x) == CONTAMINATED_CAP
    assert capped.train_y.mean() == pytest.approx(0.2, abs=0.01)
    small = contaminated(images, 0, 0, 0.2, max_train=300, max_test=100)
    assert len(small.train_x) == 300 and len(small.test_x) == 100
    seen = set(np.rint(small.train_x.ravel() * 20_000))
    assert set(np.rint(small.test_x.ravel() * 20_000)) <= seen  # evaluated on what it trains on


def test_contaminated_rejects_rho_it_cannot_meet():
    with pytest.raises(ValueError, match=r"must be in \(0, 0.5\)"):
        contaminated(pool(), 0, 0, 0.0)
    few = pool(n_per_class=1100, classes=1)
    labels = (np.arange(1100) >= 1000).astype(np.int64)  # 1,000 normals, 100 anomalies
    few = type(few)(few.x_train, labels[:550], few.x_test, labels[550:], ("a", "b"))
    with pytest.raises(ValueError, match="needs 250 anomalies besides 1000 normal.*has 100"):
        contaminated(few, 0, 0, 0.2)
    with pytest.raises(ValueError, match="needs 0 anomalies besides 3 normal"):
        contaminated(pool(n_per_class=3), 0, 0, 0.2)  # nothing to detect
    cell = Cell(study="s", protocol="contaminated", contamination=0.0)
    with pytest.raises(SpecError, match="not allowed with protocol 'contaminated'"):
        validate_cells([cell])


def test_one_class_records_max_train_and_max_test_caps(data_root):
    images = load_dataset("cifar10", data_root, {"verify": False})
    task = one_class(images, normal_class=1, seed=0, max_train=3, max_test=7)
    assert len(task.train_x) == 3 and len(task.test_x) == 7
