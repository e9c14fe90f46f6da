"""Which test images an epoch's curve figures (test_auroc, test_mse_*) are computed on.

Scoring the whole test set after every epoch costs more than the epoch's training when
the test set is larger than the training set (the one-class presets: 5x on digits, 2.5x
on the MNIST subset). ``run.curve_test_images: N`` computes the curve figures on a fixed
random subsample of N test images instead: the same images for every epoch and every
cell of a data set (seed CURVE_SEED), so curves of different cells and epochs compare
like with like. Final metrics (auroc, the AUPRs, the stored scores) always use the whole
test set. 0 (the default): every test image, every epoch.
"""

from __future__ import annotations

import numpy as np

CURVE_SEED = 0


def curve_subset(n_test: int, images: int) -> np.ndarray | None:
    """Sorted indices of the fixed subsample of ``images`` of ``n_test`` test images;
    None when every image is scored (``images`` 0, or not fewer than ``n_test``)."""
    if images <= 0 or images >= n_test:
        return None
    return np.sort(np.random.default_rng(CURVE_SEED).permutation(n_test)[:images])


def on_curve(values, picked: np.ndarray | None):
    """The entries of ``values`` (test images or labels: a tensor or an array) that the
    curve is computed on: all of them when ``picked`` is None."""
    return values if picked is None else values[picked]
