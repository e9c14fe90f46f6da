"""The validation split: held-out training images a tuned study selects on, never test ones.

A cell with ``val_fraction`` > 0 holds that share of its training images out of training,
drawn with a fixed seed (VAL_SEED, not the cell's), so every loss, seed and tuned
configuration of a study sees the same split and is judged on the same images. Under the
one_class protocol the split also takes as many images of the other classes from the train
split (never from the test split), so a labelled validation AUROC exists; under the
contaminated protocol the held-out pool images carry no labels the trainer may use, so the
split has a reconstruction figure only.

Figures: ``val_recon_mse`` (mean per-image reconstruction MSE of the held-out normal (or
pool) images: needs no labels, lower is better) and ``val_auroc`` (held-out anomalies
against held-out normals, higher is better).
"""

from __future__ import annotations

import numpy as np

from trainables.metrics import auroc

VAL_SEED = 2718  # fixed: the split must not change with the cell's seed


def split_off(n: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the images kept for training and of those held out, both sorted.

    Args:
        n: how many training images there are.
        fraction: the share held out, in [0, 1); at least one image when > 0.
    Returns:
        (train_index, val_index); val_index is empty when ``fraction`` is 0.
    Raises:
        ValueError: for a fraction outside [0, 1) or a split that leaves no training image.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"val_fraction {fraction!r} is not allowed; it must be in [0, 1)")
    if fraction == 0:
        return np.arange(n), np.arange(0)
    n_val = max(1, round(n * fraction))
    if n_val >= n:
        raise ValueError(
            f"val_fraction {fraction} of {n} training images leaves none to train on"
        )
    held = np.zeros(n, bool)
    held[np.random.default_rng(VAL_SEED).choice(n, n_val, replace=False)] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def draw(x: np.ndarray, count: int) -> np.ndarray:
    """``count`` rows of ``x`` (all when fewer), drawn with VAL_SEED, order kept."""
    if len(x) <= count:
        return x
    rng = np.random.default_rng(VAL_SEED + 1)
    return x[np.sort(rng.choice(len(x), count, replace=False))]


def val_figures(
    normal_mse: np.ndarray, normal_scores: np.ndarray, anomaly_scores: np.ndarray | None
) -> dict[str, float]:
    """The validation figures of a model.

    Args:
        normal_mse: per-image reconstruction MSE of the held-out normal (or pool) images.
        normal_scores: their anomaly scores (higher = more anomalous).
        anomaly_scores: the held-out anomalies' scores; None when the split has none.
    Returns:
        ``val_recon_mse`` and, with anomalies, ``val_auroc``; NaN (never an exception) for
        a figure whose inputs are not finite.
    """
    figures = {"val_recon_mse": float(np.mean(normal_mse))}
    if anomaly_scores is not None and len(anomaly_scores) and len(normal_scores):
        scores = np.concatenate([normal_scores, anomaly_scores])
        labels = np.r_[np.zeros(len(normal_scores)), np.ones(len(anomaly_scores))]
        finite = bool(np.all(np.isfinite(scores)))
        figures["val_auroc"] = auroc(labels, scores) if finite else float("nan")
    return figures
