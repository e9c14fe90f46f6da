"""The loss registry's contract suite: every loss returns a finite per-sample value and a
gradient on either value range; each against its paper's formula on hand-made tensors
(LMSE, LAMP with each base, 1 - SSIM, the VAE's KL, IAEAD's soft-boundary Deep SVDD term
and its trainer-owned state); bad parameters rejected before any trial."""

from __future__ import annotations

import json
import math

import pytest
import torch

from study.cell import Cell
from study.checks import check_cells
from study.errors import SpecError
from trainables.losses import LOSSES, TRAINER_KEYWORDS, flip_log, loss_keywords
from trainables.models import Output
from trainables.run import run_cell
from trainables.svdd import SvddState, init_center, radius

C1 = 0.01**2  # SSIM's (K1 * L)^2 with L = 1 (Wang et al.)


def output(recon: torch.Tensor, z: torch.Tensor | None = None) -> Output:
    return Output(recon=recon, z=recon.flatten(1)[:, :2] if z is None else z)


def pixel_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM with a 1x1 window: the variances vanish, leaving the luminance term."""
    return (2 * x * y + C1) / (x**2 + y**2 + C1)


def test_ssim_is_one_minus_the_mean_ssim_of_the_paper_formula():
    target = torch.tensor([[[[0.2, 0.9], [0.5, 0.0]]]], dtype=torch.float64)
    recon = torch.tensor([[[[0.4, 0.9], [0.1, 0.3]]]], dtype=torch.float64)
    got = LOSSES["ssim"](output(recon), target, window=1)
    # (without kornia's 1e-12 in the denominator: the formula to rounding)
    assert got.item() == pytest.approx(1 - pixel_ssim(recon, target).mean().item(), rel=1e-12)
    # Constant images under an 11-pixel window: SSIM is the luminance term everywhere.
    a = torch.full((1, 1, 8, 8), 0.3, dtype=torch.float64)
    b = torch.full((1, 1, 8, 8), 0.6, dtype=torch.float64)
    assert LOSSES["ssim"](output(a), b).item() == pytest.approx(
        1 - (2 * 0.18 + C1) / (0.09 + 0.36 + C1), rel=1e-5
    )
    assert LOSSES["ssim"](output(b), b).item() == 0.0


def test_lamp_with_base_ssim_sums_the_flipped_log_of_the_scaled_dissimilarity_map():
    target = torch.tensor([[[[0.2, 0.9], [0.5, 0.0]]]], dtype=torch.float64)
    recon = torch.tensor([[[[0.4, 0.9], [0.1, 0.3]]]], dtype=torch.float64)
    eps = 0.1
    d = 1 - pixel_ssim(recon, target)  # LAMP eq. 1 with L_base = 1 - SSIM, per pixel
    scaled = d / d.max() * (1 - eps)  # eq. 2
    want = (-torch.log(1 - scaled)).sum().item()
    got = LOSSES["lamp"](output(recon), target, base="ssim", window=1, eps=eps)
    assert got.item() == pytest.approx(want, rel=1e-12)
    mean = LOSSES["lamp"](output(recon), target, base="ssim", window=1, eps=eps,
                          reduction="mean")
    assert mean.item() == pytest.approx(want / 4, rel=1e-12)


def test_lamp_l2_with_mean_reduction_equals_lmse_on_every_scaling_choice():
    torch.manual_seed(0)
    recon, target = torch.rand(3, 2, 5, 5), torch.rand(3, 2, 5, 5)
    for max_over in ("batch", "sample", "none"):
        for detach in (True, False):
            kw = {"max_over": max_over, "detach": detach, "eps": 0.01}
            lamp = LOSSES["lamp"](output(recon), target, base="l2", reduction="mean", **kw)
            assert torch.allclose(lamp, LOSSES["lmse"](output(recon), target, **kw))


def test_msle_and_ssim_measure_a_signed_model_as_its_unit_images():
    torch.manual_seed(1)
    recon, target = torch.rand(2, 1, 9, 9), torch.rand(2, 1, 9, 9)
    signed = (output(2 * recon - 1), 2 * target - 1)
    for name in ("msle", "ssim"):
        unit = LOSSES[name](output(recon), target)
        assert torch.allclose(LOSSES[name](*signed, value_range=(-1.0, 1.0)), unit, atol=1e-6)
    lamp = LOSSES["lamp"](*signed, base="ssim", value_range=(-1.0, 1.0))
    assert torch.allclose(lamp, LOSSES["lamp"](output(recon), target, base="ssim"), rtol=1e-4)
    # Without the range, the log of 1 + y breaks on [-1, 1] images.
    black = output(-torch.ones(1, 1, 2, 2))
    assert not torch.isfinite(LOSSES["msle"](black, target[:1, :, :2, :2])).all()


def test_iaead_adds_lambda_times_the_soft_boundary_term_of_eq_7():
    recon = torch.zeros(2, 1, 1, 2, dtype=torch.float64)
    target = torch.tensor([[[[0.5, 0.5]]], [[[1.0, 0.0]]]], dtype=torch.float64)  # mse .25, .5
    z = torch.tensor([[1.0, 1.0], [4.0, 5.0]], dtype=torch.float64, requires_grad=True)
    state = SvddState(nu=0.5, warmup=0, center=torch.tensor([1.0, 1.0], dtype=torch.float64),
                      radius=2.0)
    lam = 0.1
    got = LOSSES["iaead"](output(recon, z), target, lam=lam, nu=0.5, state=state)
    # ||z - c||^2 = [0, 25]; R^2 = 4; eq. 8 per sample: mse + lam * (R^2 + max(0, d - R^2) / nu)
    want = [0.25 + lam * 4, 0.5 + lam * (4 + 21 / 0.5)]
    assert got.tolist() == pytest.approx(want, rel=1e-12)
    got.mean().backward()
    assert z.grad[0].abs().sum() == 0  # inside the sphere: no pull
    # d/dz of lam/nu * ||z - c||^2 / 2 samples = lam/nu * (z - c)
    assert z.grad[1].tolist() == pytest.approx([lam / 0.5 * 3, lam / 0.5 * 4], rel=1e-12)


def test_iaead_before_the_centre_exists_is_the_reconstruction_alone():
    x, target = torch.rand(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    warm = SvddState(warmup=5)
    for state in (None, warm):
        got = LOSSES["iaead"](output(x), target, state=state)
        assert torch.equal(got, LOSSES["mse"](output(x), target))


def test_the_centre_follows_the_point_one_rule_and_the_radius_the_one_minus_nu_quantile():
    embeddings = torch.tensor([[0.04, -0.02, 0.5, 0.0], [0.02, -0.06, 0.7, 0.0]])
    assert init_center(embeddings).tolist() == pytest.approx([0.1, -0.1, 0.6, 0.0])
    distances = torch.tensor([1.0, 4.0, 9.0, 16.0, 25.0])  # squared: radii 1 .. 5
    assert radius(distances, nu=1.0).item() == 1.0  # the paper's nu: the nearest point
    assert radius(distances, nu=0.5).item() == 3.0  # the median
    assert radius(distances, nu=0.1).item() == pytest.approx(4.6)  # the code's default


def test_the_state_sets_the_centre_once_at_the_end_of_warm_up_then_solves_r_each_step():
    state = SvddState(nu=1.0, warmup=2)
    embed = lambda: torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # noqa: E731
    state.after_step(torch.ones(2, 2))
    assert state.radius == 0.0  # no centre yet: nothing to solve
    state.after_epoch(1, embed)
    assert state.center is None
    state.after_epoch(2, embed)
    assert state.center.tolist() == [2.0, 3.0]
    state.after_step(torch.tensor([[2.0, 6.0], [5.0, 7.0]]))  # distances 3 and 5
    assert state.radius.item() == pytest.approx(3.0)
    state.after_epoch(3, lambda: torch.zeros(2, 2))
    assert state.center.tolist() == [2.0, 3.0]  # kept after warm-up


@pytest.mark.slow
def test_in_training_warm_up_epochs_optimise_the_mse_alone_then_the_svdd_term_joins():
    cell = Cell(study="t", dataset="digits", model="iaead_cae", loss="iaead",
                loss_params=json.dumps({"lam": 1.0, "warmup": 2}), epochs=4, max_train=64,
                max_test=64, batch_size=32, latent_dim=8, optimizer="sgd", lr=0.1)
    *epochs, final = list(run_cell(cell))
    assert final["status"] == "complete"
    for e in epochs[:2]:
        assert e["train_loss"] == pytest.approx(e["train_mse"], rel=1e-6)
    for e in epochs[2:]:
        assert e["train_loss"] > e["train_mse"] * 1.01  # lam * (R^2 + ...) on top


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_on_either_value_range_is_finite_with_a_gradient(name):
    torch.manual_seed(2)
    for low in (0.0, -1.0):
        recon = (torch.rand(4, 3, 12, 12) * (1 - low) + low).requires_grad_()
        z = torch.randn(4, 5, requires_grad=True)
        out = Output(recon=recon, z=z, mu=z, logvar=torch.zeros(4, 5))
        target = torch.rand(4, 3, 12, 12) * (1 - low) + low
        supplied = {"value_range": (low, 1.0),
                    "state": SvddState(warmup=0, center=torch.zeros(5), radius=0.5)}
        values = LOSSES[name](out, target, **{k: supplied[k] for k in loss_keywords(name)})
        assert values.shape == (4,) and torch.isfinite(values).all()
        values.mean().backward()
        assert recon.grad.abs().sum() > 0
        if name == "iaead":
            assert z.grad.abs().sum() > 0  # the SVDD term reaches the encoder


@pytest.mark.parametrize(
    "loss, message",
    [
        ({"name": "lamp", "base": "l3"},
         "lamp base 'l3' is not allowed; choose from ['l1', 'l2', 'ssim']"),
        ({"name": "lamp", "max_over": "all"}, "max_over 'all' is not allowed"),
        ({"name": "ssim", "window": 4}, "ssim window 4 is not allowed"),
        ({"name": "iaead", "nu": 0}, "iaead nu 0 is not allowed; it must be in (0, 1]"),
        ({"name": "iaead", "warmup": -1}, "iaead warmup -1 is not allowed"),
        ({"name": "iaead", "state": 1}, "loss 'iaead' has no parameter 'state'"),
        ({"name": "msle", "value_range": [0, 2]}, "loss 'msle' has no parameter 'value_range'"),
    ],
)
def test_bad_loss_parameters_fail_before_any_trial(loss, message):
    name = loss.pop("name")
    cell = Cell(study="s", loss=name, loss_params=json.dumps(loss))
    with pytest.raises(SpecError) as err:
        check_cells([cell])
    assert message in str(err.value)


def test_trainer_keywords_are_exactly_what_the_trainer_supplies():
    assert TRAINER_KEYWORDS == ("value_range", "state")
    assert loss_keywords("iaead") == ("state",) and loss_keywords("mse") == ()
    assert set(loss_keywords("lamp")) == {"value_range"}


def make_output(batch=4, requires_grad=True, variational=False):
    torch.manual_seed(0)
    recon = torch.rand(batch, 1, 6, 6, requires_grad=requires_grad)
    mu = torch.randn(batch, 3, requires_grad=True) if variational else None
    logvar = torch.randn(batch, 3, requires_grad=True) if variational else None
    return Output(recon=recon, z=torch.randn(batch, 3), mu=mu, logvar=logvar)


def test_lamp_l2_sums_over_the_image_what_lmse_averages():
    out, target = make_output(requires_grad=False), torch.rand(4, 1, 6, 6)
    lmse = LOSSES["lmse"](out, target, max_over="batch")
    assert torch.allclose(LOSSES["lamp"](out, target, base="l2"), lmse * 36)


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
