import math

import pytest
import torch

from trainables.losses import LOSSES, flip_log
from trainables.models import Output


def make_output(batch=4, requires_grad=True, variational=False):
    torch.manual_seed(0)
    recon = torch.rand(batch, 1, 6, 6, requires_grad=requires_grad)
    mu = torch.randn(batch, 3, requires_grad=True) if variational else None
    logvar = torch.randn(batch, 3, requires_grad=True) if variational else None
    return Output(recon=recon, z=torch.randn(batch, 3), mu=mu, logvar=logvar)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_gives_finite_per_sample_values_and_a_gradient(name):
    out = make_output(variational=(name == "vae"))
    target = torch.rand(4, 1, 6, 6)
    values = LOSSES[name](out, target)
    assert values.shape == (4,)
    assert torch.isfinite(values).all()
    values.mean().backward()
    assert out.recon.grad is not None and out.recon.grad.abs().sum() > 0


def test_lmse_matches_the_paper_formula_on_a_hand_made_example():
    target = torch.tensor([[[[0.0, 1.0]]], [[[0.5, 0.5]]]], dtype=torch.float64)
    recon = torch.tensor([[[[0.5, 1.0]]], [[[0.0, 0.25]]]], dtype=torch.float64)
    eps = 1e-3
    # d = (y - y_hat)^2 = [[0.25, 0], [0.25, 0.0625]]; batch max 0.25; d' = d / 0.25 * (1 - eps)
    expected_0 = (-math.log(1 - 1 * (1 - eps)) - math.log(1 - 0)) / 2
    expected_1 = (-math.log(1 - 1 * (1 - eps)) - math.log(1 - 0.25 * (1 - eps))) / 2
    got = LOSSES["lmse"](Output(recon=recon, z=recon), target, max_over="batch", eps=eps)
    assert got.tolist() == pytest.approx([expected_0, expected_1], rel=1e-6)


def test_lmse_default_is_the_unscaled_paper_loss_for_unit_images():
    target = torch.tensor([[[[0.0, 1.0]]], [[[0.5, 0.5]]]], dtype=torch.float64)
    recon = torch.tensor([[[[0.5, 1.0]]], [[[0.0, 0.25]]]], dtype=torch.float64)
    got = LOSSES["lmse"](Output(recon=recon, z=recon), target)
    want = [-math.log(1 - 0.25) / 2, (-math.log(1 - 0.25) - math.log(1 - 0.0625)) / 2]
    assert got.tolist() == pytest.approx(want, rel=1e-12)
    # A squared error of 1 (black for white) is clamped to 1 - eps, not infinite.
    worst = LOSSES["lmse"](Output(recon=torch.zeros(1, 1, 1, 1), z=target), torch.ones(1, 1, 1, 1))
    assert worst.item() == pytest.approx(-math.log(1e-3), rel=1e-5)


def test_lmse_max_per_sample_scales_each_sample_by_its_own_peak():
    target = torch.zeros(2, 1, 1, 2, dtype=torch.float64)
    recon = torch.tensor([[[[0.5, 0.25]]], [[[0.1, 0.1]]]], dtype=torch.float64)
    got = LOSSES["lmse"](Output(recon=recon, z=recon), target, max_over="sample", eps=0.5)
    # sample 0: d = [0.25, 0.0625] -> d' = [0.5, 0.125]; sample 1: d' = [0.5, 0.5]
    want0 = (-math.log(0.5) - math.log(1 - 0.125)) / 2
    want1 = -math.log(0.5)
    assert got.tolist() == pytest.approx([want0, want1], rel=1e-6)


def test_lamp_l2_with_mean_reduction_equals_lmse_and_sum_is_hw_times_larger():
    out, target = make_output(requires_grad=False), torch.rand(4, 1, 6, 6)
    lmse = LOSSES["lmse"](out, target, max_over="batch")
    assert torch.allclose(LOSSES["lamp"](out, target, base="l2", reduction="mean"), lmse)
    assert torch.allclose(LOSSES["lamp"](out, target, base="l2"), lmse * 36)
    unscaled = LOSSES["lamp"](out, target, base="l2", reduction="mean", max_over="none")
    assert torch.allclose(unscaled, LOSSES["lmse"](out, target))


def test_lamp_l1_amplifies_the_absolute_error_map():
    target = torch.zeros(1, 1, 1, 2)
    recon = torch.tensor([[[[0.4, 0.2]]]])
    got = LOSSES["lamp"](Output(recon=recon, z=recon), target, base="l1", eps=0.5)
    assert got.item() == pytest.approx(-math.log(1 - 0.5) - math.log(1 - 0.25), rel=1e-6)


def test_detached_max_is_a_constant_for_autograd():
    values = torch.tensor([1.0, 2.0], requires_grad=True)
    flip_log(values, "batch", detach=True, eps=0.5).sum().backward()
    # d/dv -log(1 - v*(1-eps)/2) = (1-eps)/2 / (1 - v*(1-eps)/2)
    assert values.grad.tolist() == pytest.approx([0.25 / 0.75, 0.25 / 0.5])


def test_perfect_reconstruction_gives_zero_not_nan():
    x = torch.rand(2, 1, 3, 3)
    for name in ("lmse", "lamp"):
        assert LOSSES[name](Output(recon=x, z=x), x).tolist() == [0.0, 0.0]


def test_vae_adds_the_kl_term_of_the_paper_and_needs_a_variational_model():
    x = torch.rand(1, 1, 2, 2)
    out = Output(recon=x, z=torch.zeros(1, 2), mu=torch.tensor([[1.0, 0.0]]),
                 logvar=torch.tensor([[0.0, math.log(2.0)]]))
    kl = -0.5 * ((1 + 0 - 1 - 1) + (1 + math.log(2.0) - 0 - 2)) / 2
    assert LOSSES["vae"](out, x).item() == pytest.approx(kl, rel=1e-6)
    with pytest.raises(ValueError, match="variational"):
        LOSSES["vae"](Output(recon=x, z=x), x)
