"""The dataset and protocol registries' contract suite: every DatasetInfo record complete
and true to its loader (layout, classes, files), every dataset through every protocol
(and the protocol's size rule true to the task it builds), torchvision sets read from
roots written here in their own file formats, MVTec AD from a category folder, the
embedded sets, npz, and the missing-file check that runs before any trial."""

from __future__ import annotations

import dataclasses
import json

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
from study.checks import check_cells
from study.errors import SpecError
from study.probe import image_shape
from study.spec import parse_spec
from trainables.datasets import DATASETS, DatasetInfo, load_dataset
from trainables.embedded import LINES_2X2
from trainables.imageset import Layout
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


# Datasets whose layout is the data's own (the others' sizes are the real releases').
EXACT_SIZES = ("digits", "lines", "lines2x2", "npz")
READ_FILES = ("npz", *SOURCES, "mvtec")


def test_params_cover_every_registered_dataset():
    assert set(PARAMS) == set(DATASETS)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_record_holds_every_fact_of_its_dataset(name):
    info = DATASETS[name]
    assert isinstance(info, DatasetInfo) and callable(info.loader) and callable(info.layout)
    assert info.classes is None or (info.classes and all(isinstance(c, int) for c in info.classes))
    assert (info.files is not None) == (name in READ_FILES)  # a file reader says what it lacks
    assert {f.name for f in dataclasses.fields(DatasetInfo)} == {
        "loader", "classes", "layout", "files"}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_the_layout_is_what_the_loader_gives(name, data_root):
    """The probe's image shape and the cost's sizes come from the record, never from the
    data: they must match what the loader returns."""
    layout = DATASETS[name].layout(data_root, PARAMS[name])
    images = load_dataset(name, data_root, PARAMS[name])
    assert isinstance(layout, Layout) and layout.shape == images.x_train.shape[1:]
    cell = Cell(study="p", dataset=name, dataset_params=json.dumps(PARAMS[name]))
    assert image_shape(cell, str(data_root)) == layout.shape  # what the probe builds on
    if name in EXACT_SIZES:
        assert (layout.train, layout.test) == (len(images.x_train), len(images.x_test))
        assert layout.classes == len(images.classes)
    if DATASETS[name].classes is not None and name != "mvtec":  # mvtec: good vs defects
        assert layout.classes == len(DATASETS[name].classes)


def test_an_npz_with_a_test_file_has_that_files_images_as_its_test_set(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", x=rng.random((40, 8, 8), dtype=np.float32),
             y=np.repeat([0, 1], 20))
    np.savez_compressed(tmp_path / "test.npz", x=rng.random((15, 8, 8), dtype=np.float32),
                        y=np.repeat([0, 1, 2], 5))  # a class only the test file holds
    params = {"path": "train.npz", "test_path": "test.npz"}
    layout = DATASETS["npz"].layout(tmp_path, params)
    images = load_dataset("npz", tmp_path, params)
    assert (layout.train, layout.test, layout.classes) == (40, 15, 3)
    assert (len(images.x_train), len(images.x_test), len(images.classes)) == (40, 15, 3)
    assert layout.shape == images.x_train.shape[1:] == (1, 8, 8)
    assert DATASETS["npz"].layout(tmp_path, {**params, "test_path": "absent.npz"}) is None


def test_an_npz_file_not_here_has_no_layout_and_is_not_probed(tmp_path):
    assert DATASETS["npz"].layout(tmp_path, {"path": "absent.npz"}) is None
    missing = Cell(study="p", dataset="npz", dataset_params='{"path": "absent.npz"}')
    assert image_shape(missing, str(tmp_path)) is None  # the trial says why


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.parametrize("name", EXACT_SIZES)
def test_the_protocols_size_rule_is_the_task_it_builds(name, protocol, data_root):
    """The cost estimate's image counts (ProtocolInfo.size over the dataset's layout) are
    the task's, up to the class imbalance of one normal class (the rule takes the mean)."""
    layout = DATASETS[name].layout(data_root, PARAMS[name])
    images = load_dataset(name, data_root, PARAMS[name])
    for cap in (0, 5):
        task = PROTOCOLS[protocol].build(images, normal_class=0, seed=0, contamination=0.2,
                                         max_train=cap, max_test=cap)
        n_train, n_test = PROTOCOLS[protocol].size(layout, 0.2, cap, cap)
        assert n_train == pytest.approx(len(task.train_x), rel=0.15, abs=1)
        assert n_test == pytest.approx(len(task.test_y), rel=0.15, abs=1)


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
        DATASETS[name].loader(data_root, verify=True)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_missing_files_are_named_with_how_to_get_them(name, tmp_path):
    message = DATASETS[name].files(tmp_path, {"download": False})
    for path in expected_files(name, tmp_path):
        assert str(path.relative_to(tmp_path)) in message
    assert "download: true" in message and f"torchvision.datasets.{SOURCES[name]}" in message
    assert DATASETS[name].files(tmp_path, {"download": True}) == ""
    with pytest.raises(FileNotFoundError, match="are missing"):
        DATASETS[name].loader(tmp_path)


def test_a_study_with_missing_files_fails_before_any_trial(tmp_path, data_root):
    spec = parse_spec("study: s\nfixed:\n  dataset: {name: cifar10, download: false}\n")
    cell = Cell(study="s", dataset="cifar10", dataset_params='{"download":false}')
    with pytest.raises(SpecError, match="cifar-10-batches-py/data_batch_1"):
        check_cells([cell], str(tmp_path))
    check_cells([cell], str(data_root))  # present: accepted
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
    assert "needs a 'path'" in DATASETS["mvtec"].files(tmp_path, {})
    message = DATASETS["mvtec"].files(tmp_path, {"path": "nowhere/bottle"})
    assert "nowhere/bottle/train/good" in message and "mvtec.com" in message
    with pytest.raises(FileNotFoundError, match="train/good"):
        DATASETS["mvtec"].loader(tmp_path, path="nowhere/bottle")


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.parametrize("name", sorted(PARAMS))
def test_every_dataset_yields_images_and_0_1_labels_with_its_protocols_counts(
    name, protocol, data_root
):
    images = load_dataset(name, data_root, PARAMS[name])
    for x, y in ((images.x_train, images.y_train), (images.x_test, images.y_test)):
        assert x.dtype == np.float32 and x.ndim == 4 and len(x) == len(y)
        assert 0.0 <= x.min() and x.max() <= 1.0
    classes = DATASETS[name].classes
    if classes is not None and name != "mvtec":  # mvtec lists its one normal class, 0
        assert set(np.unique(np.concatenate([images.y_train, images.y_test]))) <= set(classes)
    if name in ("digits", "lines", "lines2x2"):  # embedded: every class in either split
        for y in (images.y_train, images.y_test):
            assert set(np.unique(y)) == set(classes)
    task = PROTOCOLS[protocol].build(images, normal_class=0, seed=0, contamination=0.2)
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
        check_cells([cell])


def test_one_class_records_max_train_and_max_test_caps(data_root):
    images = load_dataset("cifar10", data_root, {"verify": False})
    task = one_class(images, normal_class=1, seed=0, max_train=3, max_test=7)
    assert len(task.train_x) == 3 and len(task.test_x) == 7


def test_npz_dataset_reads_real_mnist(mnist5k):
    images = load_dataset("npz", mnist5k.parent, {"path": mnist5k.name})
    assert images.x_train.shape[1:] == (1, 28, 28)
    assert len(images.x_train) + len(images.x_test) == 5000
    assert len(images.x_test) == 1000 and images.classes == tuple(str(i) for i in range(10))
    assert images.x_train.max() == 1.0


def test_npz_needs_a_path(tmp_path):
    with pytest.raises(ValueError, match="needs a 'path'"):
        DATASETS["npz"].loader(tmp_path)


def test_lines2x2_holds_the_papers_four_images_as_the_normal_class(tmp_path):
    images = load_dataset("lines2x2", tmp_path, {})
    task = one_class(images, normal_class=0, seed=0)
    assert sorted(map(tuple, task.train_x.reshape(4, 4).astype(int).tolist())) == sorted(
        LINES_2X2
    )
    assert task.test_y.sum() == 12 and len(task.test_y) == 16


def test_lines_are_half_planes_through_the_centre(tmp_path):
    images = load_dataset("lines", tmp_path, {"n_train": 20, "n_test": 10})
    normal = images.x_train[images.y_train == 0][:, 0]
    # A line through the centre splits the image into two equal halves (up to the diagonal).
    assert np.allclose(normal.mean(axis=(1, 2)), 0.5, atol=0.04)
    assert set(np.unique(normal)) == {0.0, 1.0}


def test_one_class_trains_on_the_normal_class_and_tests_on_everything(tmp_path):
    images = load_dataset("digits", tmp_path, {})
    task = one_class(images, normal_class=3, seed=0)
    assert len(task.train_x) == (images.y_train == 3).sum()
    assert len(task.test_x) == len(images.x_test)
    assert task.test_y.tolist() == (images.y_test != 3).astype(int).tolist()
    capped = one_class(images, normal_class=3, seed=0, max_train=10, max_test=50)
    assert len(capped.train_x) == 10 and len(capped.test_x) == 50


def test_one_class_rejects_a_class_the_data_lacks(tmp_path):
    images = load_dataset("lines2x2", tmp_path, {})
    with pytest.raises(ValueError, match="normal_class 5 has no images"):
        one_class(images, normal_class=5, seed=0)


def test_binarize_makes_black_and_white_images_from_gray_ones(data_root):
    """The AE-vs-VAE appendix's "black and white version of mnist": pixels above the
    threshold white, the rest black, in both splits; 0 leaves the gray images."""
    for name, params in (("npz", {"path": "arrays.npz"}), ("mnist", {})):
        gray = load_dataset(name, data_root, params)
        bw = load_dataset(name, data_root, params | {"binarize": 0.5})
        for split in ("x_train", "x_test"):
            want = (getattr(gray, split) > 0.5).astype(np.float32)
            assert np.array_equal(getattr(bw, split), want)
            assert set(np.unique(getattr(bw, split))) <= {0.0, 1.0}
            assert len(np.unique(getattr(gray, split))) > 2
        assert np.array_equal(bw.y_train, gray.y_train)
    cell = Cell(study="p", dataset="mnist", dataset_params='{"binarize": 0.5}')
    assert cell.cell_id != Cell(study="p", dataset="mnist").cell_id  # other data, other cell


def test_splits_train_keeps_the_train_split_only_for_the_contaminated_pool(data_root):
    """IAEAD's paper on SVHN: "we only use the training set". With splits: train the pool
    of protocol contaminated is drawn from the train split alone; the default (both) pools
    train and test, as IAEAD's public code; one_class needs a test split and says so."""
    both = load_dataset("svhn", data_root, {"verify": False})
    train = load_dataset("svhn", data_root, {"verify": False, "splits": "train"})
    assert np.array_equal(train.x_train, both.x_train) and len(train.x_test) == 0
    layout = DATASETS["svhn"].layout(data_root, {"splits": "train"})
    assert (layout.train, layout.test) == (DATASETS["svhn"].layout(data_root, {}).train, 0)
    normal = int(np.sum(train.y_train == 0))
    task = contaminated(train, normal_class=0, seed=0, contamination=0.4)
    assert int(np.sum(task.test_y == 0)) == normal  # every normal image of the train split
    pooled = contaminated(both, normal_class=0, seed=0, contamination=0.4)
    assert int(np.sum(pooled.test_y == 0)) == normal + int(np.sum(both.y_test == 0))
    with pytest.raises(ValueError, match="protocol one_class needs a test split"):
        one_class(train, normal_class=0, seed=0)
    with pytest.raises(ValueError, match="svhn splits 'test' is not allowed"):
        load_dataset("svhn", data_root, {"verify": False, "splits": "test"})
