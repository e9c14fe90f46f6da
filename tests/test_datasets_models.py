import numpy as np
import pytest
import torch

from trainables.datasets import DATASET_CLASSES, DATASETS, LINES_2X2, load_dataset
from trainables.metrics import detection_metrics
from trainables.models import MODELS
from trainables.preprocess import VALUE_RANGE
from trainables.protocols import one_class

EMBEDDED = ["digits", "lines", "lines2x2"]


@pytest.mark.parametrize("name", EMBEDDED)
def test_every_embedded_dataset_yields_unit_images_and_its_classes(name, tmp_path):
    images = load_dataset(name, tmp_path, {})
    for x, y in ((images.x_train, images.y_train), (images.x_test, images.y_test)):
        assert x.dtype == np.float32 and x.ndim == 4 and len(x) == len(y)
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert set(np.unique(y)) == set(DATASET_CLASSES[name])


def test_npz_dataset_reads_real_mnist(mnist5k):
    images = load_dataset("npz", mnist5k.parent, {"path": mnist5k.name})
    assert images.x_train.shape[1:] == (1, 28, 28)
    assert len(images.x_train) + len(images.x_test) == 5000
    assert len(images.x_test) == 1000 and images.classes == tuple(str(i) for i in range(10))
    assert images.x_train.max() == 1.0


def test_npz_needs_a_path(tmp_path):
    with pytest.raises(ValueError, match="needs a 'path'"):
        DATASETS["npz"](tmp_path)


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


def test_auroc_direction_perfect_scores_give_one():
    labels = np.array([0, 0, 1, 1])
    perfect = detection_metrics(labels, np.array([0.1, 0.2, 0.8, 0.9]))
    assert perfect == {"auroc": 1.0, "aupr_out": 1.0, "aupr_in": 1.0}
    inverted = detection_metrics(labels, np.array([0.9, 0.8, 0.2, 0.1]))
    assert inverted["auroc"] == 0.0
    with pytest.raises(ValueError, match="both normals and anomalies"):
        detection_metrics(np.array([0, 0]), np.array([0.1, 0.2]))


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 2, 2)])
def test_every_model_maps_the_input_shape_back_and_exposes_its_embedding(name, shape):
    if name == "cae" and shape[1] < 4:
        pytest.skip("a 3-layer stride-2 CAE needs at least 4x4 pixels")
    model = MODELS[name](shape, 3)
    x = torch.rand(5, *shape)
    out = model(x)
    assert out.recon.shape == x.shape
    assert out.z.shape == (5, 3) and model.encode(x).shape == (5, 3)
    low, high = VALUE_RANGE[name]  # [0, 1], or [-1, 1] for iaead_cae (tanh output)
    assert low <= out.recon.min() and out.recon.max() <= high


def test_fast_auroc_equals_sklearn_with_and_without_ties():
    from sklearn.metrics import roc_auc_score

    from trainables.metrics import auroc

    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 2, 50)
        labels[:2] = (0, 1)
        scores = rng.integers(0, 6, 50).astype(float)  # many ties
        assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
        scores = rng.random(50)
        assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
