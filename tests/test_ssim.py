"""SSIM (losses ``ssim`` and ``lamp`` with base ssim) against an independent implementation:
scikit-image's structural_similarity with Wang et al.'s settings (Gaussian window, sigma
1.5, 11 taps, K1 0.01, K2 0.03, no sample-covariance correction, data range 1). Its map
agrees with ours on every interior pixel (a whole window inside the image) whatever the
padding, its mean is Wang's cropped mean, which ``padding: valid`` gives; ``same`` keeps
the border pixels (reflect padding) that LAMP sums over H x W."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from trainables.losses import LOSSES, ssim_map
from trainables.models import Output

BORDER = 5  # 11 // 2: pixels a whole window does not cover


def wang(a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray]:
    """scikit-image's mean SSIM (the cropped mean) and full map of two [0, 1] images."""
    return structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, full=True)


def pairs():
    rng = np.random.default_rng(0)
    noisy = rng.random((28, 28))
    yield noisy, np.clip(noisy + 0.2 * rng.standard_normal((28, 28)), 0, 1)
    digit = np.zeros((28, 28))
    digit[6:22, 11:17] = 1.0  # a stroke on black, as MNIST: flat regions and edges
    yield digit, np.clip(digit * 0.8 + 0.1 * rng.random((28, 28)), 0, 1)
    yield rng.random((16, 20)), rng.random((16, 20))  # not square, far apart


@pytest.mark.parametrize("k", range(3))
def test_the_ssim_map_equals_scikit_image_on_interior_pixels_and_its_cropped_mean(k):
    a, b = list(pairs())[k]
    mean, full = wang(a, b)
    ta, tb = (torch.tensor(v)[None, None] for v in (a, b))
    same = ssim_map(ta, tb, 11).numpy()[0, 0]
    valid = ssim_map(ta, tb, 11, padding="valid").numpy()[0, 0]
    interior = full[BORDER:-BORDER, BORDER:-BORDER]
    assert valid.shape == interior.shape
    np.testing.assert_allclose(valid, interior, rtol=0, atol=1e-12)
    np.testing.assert_allclose(same[BORDER:-BORDER, BORDER:-BORDER], interior, rtol=0, atol=1e-12)
    loss = LOSSES["ssim"](Output(recon=tb, z=tb[:, 0, 0]), ta, padding="valid")
    assert loss.item() == pytest.approx(1 - mean, abs=1e-12)  # Wang's mean SSIM
    # "same" is another mean: its border pixels see a reflected neighbourhood
    assert abs(same.mean() - valid.mean()) > 1e-4


def test_identical_images_have_ssim_one_with_either_padding_even_black_ones():
    for image in (np.zeros((28, 28)), np.random.default_rng(1).random((28, 28))):
        t = torch.tensor(image)[None, None]
        for padding in ("same", "valid"):
            assert torch.equal(ssim_map(t, t.clone(), 11, padding=padding),
                               torch.ones_like(ssim_map(t, t, 11, padding=padding)))
        assert wang(image, image)[0] == pytest.approx(1.0, abs=1e-12)


def test_the_window_is_cut_to_what_the_image_allows():
    x = torch.rand(1, 1, 8, 6, dtype=torch.float64)
    y = torch.rand(1, 1, 8, 6, dtype=torch.float64)
    assert ssim_map(x, y, 11).shape == (1, 1, 8, 6)  # same: window cut to 11 (2 * 6 - 1)
    assert ssim_map(x, y, 11, padding="valid").shape == (1, 1, 4, 2)  # valid: to 5
    # the cut window is a 5-tap one: the "same" map of window 5, cropped by its radius
    cut = ssim_map(x, y, 5)[..., 2:-2, 2:-2]
    assert torch.allclose(ssim_map(x, y, 11, padding="valid"), cut, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="ssim padding 'full' is not allowed"):
        ssim_map(x, y, 11, padding="full")


def test_lamp_with_valid_padding_sums_over_the_windows_inside_the_image():
    torch.manual_seed(3)
    x, recon = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    got = LOSSES["lamp"](Output(recon=recon, z=x[:, 0, 0]), x, base="ssim", padding="valid")
    d = (1 - ssim_map(recon, x, 11, padding="valid")).clamp_min(0)
    assert d.shape == (2, 1, 6, 6)
    want = (-torch.log1p(-d / d.max() * (1 - 1e-3))).flatten(1).sum(1)
    assert torch.allclose(got, want)
