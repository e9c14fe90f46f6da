"""Detection metrics. Anomalies (label 1) are the positives; scores: higher = more anomalous."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def detection_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC, AUPR-out (anomalies positive) and AUPR-in (normals positive, negated scores).

    Raises:
        ValueError: when the labels hold one class only (the metrics are undefined).
    """
    labels = np.asarray(labels)
    if len(np.unique(labels)) != 2:
        raise ValueError(f"test labels need both normals and anomalies, got {np.unique(labels)}")
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "aupr_out": float(average_precision_score(labels, scores)),
        "aupr_in": float(average_precision_score(1 - labels, -np.asarray(scores))),
    }


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(labels, scores))
