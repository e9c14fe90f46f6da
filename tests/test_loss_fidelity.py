"""The losses against references written from the papers' equations, on the edge cases an
audit found (issue 16): LAMP with base SSIM on a perfect reconstruction, LMSE's gradient
where the error nears 1 (the clamp's cut and the paper's eps placement), the Keras KL
weight of the AE-vs-VAE paper's VAE, and ties at the max of LAMP eq. 2 when the max is
not detached. Values and gradients in float64 against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from kornia.metrics import ssim as kornia_ssim

from trainables.losses import LOSSES, flip_log
from trainables.models import Output


def out(recon: torch.Tensor, **more) -> Output:
    return Output(recon=recon, z=recon.flatten(1)[:, :2], **more)


# -- 1. LAMP eq. 2 with base SSIM on a perfect reconstruction ----------------------------

@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("max_over", ["batch", "sample"])
def test_lamp_ssim_of_a_perfect_reconstruction_is_zero(max_over, padding):
    """The audit's case: identical images with black regions. 1 - SSIM is 0 everywhere
    (SSIM's c1, c2 keep its denominator positive; kornia's 1e-12 is not added), so eq.
    2's max is 0 and the guard gives 0, not noise divided by its own max (~230)."""
    torch.manual_seed(0)
    x = torch.rand(4, 1, 28, 28)
    x[..., :6] = 0
    for recon in (x.clone(), x.clone().requires_grad_()):
        got = LOSSES["lamp"](out(recon), x, base="ssim", max_over=max_over, padding=padding)
        assert got.tolist() == [0.0, 0.0, 0.0, 0.0]
    black = torch.zeros(2, 1, 8, 8)
    assert LOSSES["ssim"](out(black.clone()), black).tolist() == [0.0, 0.0]


def test_lamp_ssim_of_a_near_perfect_reconstruction_follows_eq_2():
    """One pixel off: eq. 2 scales the map by its max, so that pixel's neighbourhood is
    amplified and the rest stays 0 (exact SSIM, no eps floor to amplify)."""
    x = torch.rand(1, 1, 12, 12, dtype=torch.float64)
    recon = x.clone()
    recon[0, 0, 6, 6] += 0.01
    base = 1 - kornia_ssim(recon, x, 11, 1.0, eps=0.0)
    d = base.clamp_min(0)
    want = (-torch.log1p(-d / d.max() * (1 - 1e-3))).sum()
    got = LOSSES["lamp"](out(recon), x, base="ssim")
    assert got.item() == pytest.approx(want.item(), rel=1e-12)


# -- 2. LMSE near |error| = 1: the clamp's cut, and eps added to 1 - x (the paper's text) -

def lmse_add_reference(y: torch.Tensor, y_hat: torch.Tensor, eps: float):
    """LMSE with eps where the paper's text puts it ("eps is added to the 1 - x form"):
    mean of -log(1 - (y - y_hat)^2 + eps); its derivative by y_hat, eq. 7 with eps:
    (1/N) * -2 (y - y_hat) / (1 - (y - y_hat)^2 + eps)."""
    e = y - y_hat
    n = e[0].numel()
    value = (-torch.log(1 - e**2 + eps)).flatten(1).mean(1)
    grad = -2 * e / (1 - e**2 + eps) / n
    return value, grad


def test_lmse_with_eps_added_has_eq_7s_gradient_everywhere_even_at_an_error_of_one():
    eps = 1e-3
    y = torch.tensor([[[[1.0, 0.0, 1.0, 0.3, 1.0]]]], dtype=torch.float64)
    y_hat = torch.tensor([[[[0.0, 1.0, 3e-4, 0.3, 0.5]]]], dtype=torch.float64,
                         requires_grad=True)  # errors 1, -1, 0.9997, 0, 0.5
    got = LOSSES["lmse"](out(y_hat), y, eps_mode="add", eps=eps)
    want, want_grad = lmse_add_reference(y, y_hat.detach(), eps)
    assert got.tolist() == pytest.approx(want.tolist(), rel=1e-12)
    got.sum().backward()
    assert y_hat.grad.flatten().tolist() == pytest.approx(want_grad.flatten().tolist(), rel=1e-12)
    assert (y_hat.grad.flatten()[[0, 1, 2, 4]] != 0).all()  # a gradient past 1 - eps too


def test_lmse_through_a_saturated_sigmoid_the_audits_case():
    """A pre-sigmoid logit of -8 with target 1 (error 0.99966). Eq. 7 without eps: -0.9995
    per logit; plain MSE: -6.7e-4. eps added: -0.40 (finite, far steeper than MSE). The
    default clamp cuts it to 0: the documented cost of "clamp" (stored studies ran so)."""
    def grad(**params):
        logit = torch.tensor([[[[-8.0]]]], dtype=torch.float64, requires_grad=True)
        LOSSES["lmse"](out(torch.sigmoid(logit)), torch.ones(1, 1, 1, 1, dtype=torch.float64),
                       **params).sum().backward()
        return logit.grad.item()

    p = 1 / (1 + math.exp(8))  # sigmoid(-8)
    e = 1 - p
    eq7 = -2 * e / (1 - e**2) * p * (1 - p)
    assert eq7 == pytest.approx(-0.9995, abs=1e-4)
    assert grad(eps_mode="add") == pytest.approx(-2 * e / (1 - e**2 + 1e-3) * p * (1 - p),
                                                 rel=1e-12)
    assert grad(eps_mode="add", eps=1e-9) == pytest.approx(eq7, rel=1e-5)
    assert grad() == 0.0  # clamp: |error| above sqrt(1 - eps) = 0.9995 has no gradient
    just_below = torch.tensor([[[[0.9994]]]], dtype=torch.float64, requires_grad=True)
    LOSSES["lmse"](out(torch.zeros(1, 1, 1, 1, dtype=torch.float64)), just_below).sum().backward()
    # (d/dy of -log(1 - y^2) = 2y / (1 - y^2): below the clamp it is eq. 7)
    assert just_below.grad.item() == pytest.approx(2 * 0.9994 / (1 - 0.9994**2), rel=1e-9)


def test_eps_mode_add_is_for_the_unscaled_form_only():
    x = torch.rand(2, 1, 3, 3)
    for max_over in ("batch", "sample"):
        with pytest.raises(ValueError, match="eps_mode 'add' needs max_over 'none'"):
            LOSSES["lmse"](out(x), torch.zeros_like(x), max_over=max_over, eps_mode="add")
    lamp_add = LOSSES["lamp"](out(x), torch.zeros_like(x), max_over="none", eps_mode="add",
                              eps=0.01)
    assert lamp_add.tolist() == pytest.approx((-torch.log(1 - x**2 + 0.01)).flatten(1)
                                              .sum(1).tolist(), rel=1e-6)


# -- 3. the VAE's KL weight, as the Keras example computes it ------------------------------

def keras_vae_loss(x, recon, mu, b):
    """keras-team/keras examples/variational_autoencoder.py: reconstruction_loss =
    mse(inputs, outputs) * original_dim; kl_loss = -0.5 * sum(1 + z_log_var - z_mean^2 -
    exp(z_log_var), axis=-1); per sample reconstruction_loss + kl_loss."""
    d_pixels = x[0].numel()
    mse = ((x - recon) ** 2).flatten(1).mean(1)
    kl = -0.5 * (1 + b - mu**2 - b.exp()).sum(1)
    return mse * d_pixels + kl


def test_vae_kl_keras_is_the_keras_example_divided_by_the_pixels():
    torch.manual_seed(1)
    x, recon = torch.rand(3, 1, 28, 28, dtype=torch.float64), torch.rand(3, 1, 28, 28,
                                                                         dtype=torch.float64)
    mu, b = torch.randn(3, 8, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
    o = out(recon, mu=mu, logvar=b)
    keras = LOSSES["vae"](o, x, kl="keras")
    assert (keras * 784).tolist() == pytest.approx(keras_vae_loss(x, recon, mu, b).tolist(),
                                                   rel=1e-12)
    # against eq. 1 as printed (KL averaged over the latent units): a weight of d / D
    mse = ((x - recon) ** 2).flatten(1).mean(1)
    ratio = (keras - mse) / (LOSSES["vae"](o, x) - mse)
    assert ratio.tolist() == pytest.approx([8 / 784] * 3, rel=1e-12)
    one = out(recon[:, :, :2, :2], mu=mu[:, :1], logvar=b[:, :1])  # the 2x2 preset's shapes
    assert torch.allclose(LOSSES["vae"](one, x[:, :, :2, :2], kl="keras"),
                          LOSSES["vae"](one, x[:, :, :2, :2], beta=0.25), rtol=1e-12)
    with pytest.raises(ValueError, match="vae kl 'sum' is not allowed"):
        LOSSES["vae"](o, x, kl="sum")


# -- 8. ties at the max of eq. 2 with a max that is not detached ----------------------------

def eq2_tied_gradient(v: torch.Tensor, eps: float) -> torch.Tensor:
    """d/dv_j of sum_i -log(1 - v_i / m * (1 - eps)), m = max(v), the max's subgradient
    split evenly between its k tied elements (dm/dv_j = 1/k for each of them)."""
    m = v.max()
    c = (1 - eps) / m
    direct = c / (1 - v * c)
    through_max = (v * c / m / (1 - v * c)).sum()
    tied = (v == m).double()
    return direct - through_max * tied / tied.sum()


@pytest.mark.parametrize("max_over", ["batch", "sample"])
def test_ties_at_an_undetached_max_share_its_gradient_evenly(max_over):
    values = torch.tensor([[0.2, 0.8, 0.8, 0.5]], dtype=torch.float64, requires_grad=True)
    flip_log(values, max_over, detach=False, eps=0.1).sum().backward()
    want = eq2_tied_gradient(values.detach()[0], 0.1)
    assert values.grad[0].tolist() == pytest.approx(want.tolist(), rel=1e-12)
    assert values.grad[0, 1] == values.grad[0, 2]  # not all to one of the two
