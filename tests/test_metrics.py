"""Detection metrics: anomalies are the positives, higher scores more anomalous."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from trainables.metrics import auroc, detection_metrics


def test_auroc_direction_perfect_scores_give_one():
    labels = np.array([0, 0, 1, 1])
    perfect = detection_metrics(labels, np.array([0.1, 0.2, 0.8, 0.9]))
    assert perfect == {"auroc": 1.0, "aupr_out": 1.0, "aupr_in": 1.0}
    inverted = detection_metrics(labels, np.array([0.9, 0.8, 0.2, 0.1]))
    assert inverted["auroc"] == 0.0
    with pytest.raises(ValueError, match="both normals and anomalies"):
        detection_metrics(np.array([0, 0]), np.array([0.1, 0.2]))


def test_fast_auroc_equals_sklearn_with_and_without_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 2, 50)
        labels[:2] = (0, 1)
        scores = rng.integers(0, 6, 50).astype(float)  # many ties
        assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
        scores = rng.random(50)
        assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
