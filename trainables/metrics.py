"""Detection metrics. Anomalies (label 1) are the positives; scores: higher = more anomalous.

AUPR comes two ways, both stored: ``aupr_in``/``aupr_out`` are average precision
(scikit-learn's average_precision_score: the step-wise sum of precision over recall
gains, which does not interpolate), ``aupr_in_trapz``/``aupr_out_trapz`` the trapezoidal
area under the precision-recall curve (auc(recall, precision)), which IAEAD's public code
computes (utils/utils.py, save_roc_pr_curve_data) and so its paper's tables report. They
differ by up to a few thousandths on this project's data; the IAEAD paper tables use the
trapezoid, everything else average precision.
"""

from __future__ import annotations

import numpy as np

# scipy.stats and sklearn.metrics are imported where they are used: ~1 s on 2 CPU cores that
# the driver's cell checks (which import this module and compute no metric) do not pay.

# The final metrics of a trial, as detection_metrics returns them (the trials columns).
METRICS = ("auroc", "aupr_in", "aupr_out", "aupr_in_trapz", "aupr_out_trapz")


def detection_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC, AUPR-out (anomalies positive) and AUPR-in (normals positive, negated scores),
    each AUPR as average precision and as the trapezoidal area (see the module doc).

    Raises:
        ValueError: when the labels hold one class only (the metrics are undefined).
    """
    labels = np.asarray(labels)
    if len(np.unique(labels)) != 2:
        raise ValueError(f"test labels need both normals and anomalies, got {np.unique(labels)}")
    scores = np.asarray(scores)
    from sklearn.metrics import average_precision_score

    return {
        "auroc": auroc(labels, scores),  # the per-epoch formula, so both agree exactly
        "aupr_out": float(average_precision_score(labels, scores)),
        "aupr_in": float(average_precision_score(1 - labels, -scores)),
        "aupr_out_trapz": aupr_trapz(labels, scores),
        "aupr_in_trapz": aupr_trapz(1 - labels, -scores),
    }


def aupr_trapz(labels: np.ndarray, scores: np.ndarray) -> float:
    """The trapezoidal area under the precision-recall curve, label 1 positive (IAEAD's
    code: auc(recall, precision) of precision_recall_curve)."""
    from sklearn.metrics import auc, precision_recall_curve

    precision, recall, _ = precision_recall_curve(labels, scores)
    return float(auc(recall, precision))


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUROC as the Mann-Whitney U statistic over average ranks: the value sklearn's
    roc_auc_score gives (ties count one half), without its ~6 ms of input validation,
    which dominated per-epoch evaluation of small cells."""
    positive = np.asarray(labels) == 1
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs both normals and anomalies in the labels")
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_figures(errors: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Per-epoch test figures from per-image reconstruction errors (the common yardstick):
    AUROC of the errors and the mean error of normals and of anomalies. NaN, never an
    exception, when the errors are not finite (the epoch's record still lands)."""
    normal, anomalous = errors[labels == 0], errors[labels == 1]
    finite = bool(np.all(np.isfinite(errors)))
    return {
        "test_auroc": auroc(labels, errors) if finite else float("nan"),
        "test_mse_normal": float(normal.mean()) if len(normal) else float("nan"),
        "test_mse_anomalous": float(anomalous.mean()) if len(anomalous) else float("nan"),
    }
