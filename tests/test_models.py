"""The model, preprocessing and optimizer catalogue: every model on the image shapes the
datasets produce (after its paper's preprocessing), the papers' architectures, and the
optimizers with IAEAD's step schedule."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from study.cell import Cell
from trainables.models import MODELS, from_patches, to_patches
from trainables.optimizers import OPTIMIZERS, build_optimizer
from trainables.preprocess import PREPROCESS, VALUE_RANGE, preprocess
from trainables.run import run_cell

# Image shapes (C, H, W) the datasets produce: digits, lines, lines2x2, MNIST and
# Fashion-MNIST, SVHN and CIFAR, MVTec at two sizes and in grey.
DATASET_SHAPES = [(1, 8, 8), (1, 32, 32), (1, 2, 2), (1, 28, 28), (3, 32, 32), (3, 64, 64),
                  (1, 128, 128)]


def test_every_model_has_its_preprocessing():
    assert set(PREPROCESS) == set(MODELS) == set(VALUE_RANGE)


@pytest.mark.parametrize("shape", DATASET_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_maps_its_preprocessed_input_back_and_exposes_its_embedding(name, shape):
    torch.manual_seed(0)
    x = torch.tensor(preprocess(name, np.random.default_rng(0).random((4, *shape), np.float32)))
    model = MODELS[name](tuple(x.shape[1:]), 6)
    out = model(x)
    assert out.recon.shape == x.shape and out.z.shape == (4, 6)
    assert torch.equal(model.eval().encode(x), model(x).z)  # the embedding scores use
    low, high = VALUE_RANGE[name]
    assert low <= x.min() and x.max() <= high
    assert low <= out.recon.min() and out.recon.max() <= high
    out.recon.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_iaead_preprocessing_pads_mnist_to_32_and_scales_to_minus_one_one():
    x = np.random.default_rng(0).random((2, 1, 28, 28), np.float32)
    signed = preprocess("iaead_cae", x)
    assert signed.shape == (2, 1, 32, 32) and signed.dtype == np.float32
    assert np.all(signed[:, :, :2] == -1) and np.all(signed[:, :, :, -2:] == -1)  # black pad
    assert np.allclose(signed[:, :, 2:30, 2:30], 2 * x - 1)
    cifar = np.random.default_rng(1).random((2, 3, 32, 32), np.float32)
    assert np.allclose(preprocess("iaead_cae", cifar), 2 * cifar - 1)
    for name in ("cae", "lamp_ae", "mlp_ae", "mlp_vae"):
        assert preprocess(name, x) is x
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        preprocess("nope", x)


def test_iaead_cae_is_the_public_codes_network_on_32_pixel_inputs():
    model = MODELS["iaead_cae"]((1, 32, 32), 256)
    convs = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (64, (3, 3), (2, 2)), (128, (3, 3), (2, 2)), (256, (3, 3), (2, 2))]
    linear = next(m for m in model.encoder if isinstance(m, nn.Linear))
    assert (linear.in_features, linear.out_features) == (4096, 256)
    assert isinstance(model.encoder[-1], nn.Tanh) and isinstance(model.decoder[-1], nn.Tanh)
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in model.decoder) == 3
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 5
    wide = MODELS["iaead_cae"]((3, 32, 32), 32, width=16)
    assert [c.out_channels for c in wide.encoder if isinstance(c, nn.Conv2d)] == [16, 32, 64]


def lamp_blocks(model: nn.Module) -> tuple[int, int]:
    encoder = sum(isinstance(m, nn.Conv2d) for m in model.encoder)
    decoder = sum(isinstance(m, nn.Upsample) for m in model.decoder)
    return encoder, decoder


def test_lamp_ae_has_four_blocks_up_to_32_pixels_and_six_above():
    for side, blocks in ((28, 4), (32, 4), (64, 6), (256, 6)):
        model = MODELS["lamp_ae"]((3, side, side), 16)
        assert lamp_blocks(model) == (blocks, blocks)
    model = MODELS["lamp_ae"]((1, 28, 28), 16, widths=[8, 16], kernel_size=5)
    assert lamp_blocks(model) == (2, 2)
    conv = model.encoder[0]
    assert conv.kernel_size == (5, 5) and isinstance(model.encoder[1], nn.BatchNorm2d)
    assert isinstance(model.encoder[2], nn.LeakyReLU)
    kinds = [type(m) for m in model.decoder[:4]]
    assert kinds == [nn.Upsample, nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU]
    with pytest.raises(ValueError, match="kernel_size 4 must be odd"):
        MODELS["lamp_ae"]((1, 28, 28), 16, kernel_size=4)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_takes_its_parameters_and_the_step_schedule(name):
    params = [nn.Parameter(torch.ones(3))]
    extra = {"sgd": {"momentum": 0.9}, "rmsprop": {"momentum": 0.5, "alpha": 0.9},
             "adam": {"eps": 1e-7, "beta1": 0.8}}[name]
    optimizer, schedule = build_optimizer(name, params, 0.1, {**extra, "step_every": 50,
                                                                "gamma": 0.5})
    group = optimizer.param_groups[0]
    for key, value in extra.items():
        assert group.get(key, group.get("betas", (None,))[0]) == value
    lrs = []
    for _ in range(120):
        params[0].grad = torch.ones(3)
        optimizer.step()
        lrs.append(group["lr"])
        schedule.step()
    # IAEAD: lr 0.1 halved every 50 epochs.
    assert lrs[0] == lrs[49] == 0.1 and lrs[50] == 0.05 and lrs[100] == 0.025
    constant, none = build_optimizer(name, params, 0.1, {})
    assert none is None and constant.param_groups[0]["lr"] == 0.1


@pytest.mark.slow
def test_iaead_cae_trains_on_signed_images_with_the_papers_recipe():
    cell = Cell(study="t", dataset="digits", model="iaead_cae", model_params='{"width":16}',
                latent_dim=32, optimizer="sgd", lr=0.1, loss="mse", batch_size=32, epochs=3,
                optimizer_params=json.dumps({"step_every": 2, "gamma": 0.5}), max_train=96,
                max_test=100)
    *epochs, final = list(run_cell(cell))
    assert final["status"] == "complete"
    assert epochs[-1]["train_mse"] < epochs[0]["train_mse"]


def test_patches_cut_and_stitch_are_inverse_and_row_major():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    tiles = to_patches(x, 2)
    assert tiles.shape == (8, 3, 2, 3)
    assert torch.equal(tiles[1], x[0, :, :2, 3:]) and torch.equal(tiles[6], x[1, :, 2:, :3])
    assert torch.equal(from_patches(tiles, 2), x)


def test_lamp_ae_with_patches_reconstructs_each_tile_on_its_own():
    """LAMP sec. 3.1's patch-wise reconstruction: the AE (built for one 14 x 14 tile) sees
    each tile of a 28 x 28 image as an image of its own; the reconstruction is stitched
    back, so a change in one tile changes that tile's reconstruction only (BN in eval
    mode), the recon_mse score of an image is the mean of its tiles', and the embedding
    is the four tiles' latent vectors side by side."""
    torch.manual_seed(0)
    model = MODELS["lamp_ae"]((1, 28, 28), 6, patches=2).eval()
    assert next(iter(model.encoder)).in_channels == 1 and model.inner[1:] == (1, 1)  # 14 px
    x = torch.rand(3, 1, 28, 28)
    out = model(x)
    assert out.recon.shape == x.shape and out.z.shape == (3, 4 * 6)
    assert torch.equal(model.encode(x), out.z)
    tiles = to_patches(x, 2)
    alone = model.decoder(model.from_latent(model.to_latent(model.encoder(tiles)))
                          .view(-1, *model.inner))
    assert torch.allclose(from_patches(alone, 2), out.recon)
    changed = x.clone()
    changed[:, :, 14:, 14:] = torch.rand(3, 1, 14, 14)  # the last tile only
    again = model(changed).recon
    assert torch.equal(again[:, :, :14], out.recon[:, :, :14])
    assert torch.equal(again[:, :, 14:, :14], out.recon[:, :, 14:, :14])
    assert not torch.equal(again[:, :, 14:, 14:], out.recon[:, :, 14:, 14:])
    per_tile = ((alone - tiles) ** 2).flatten(1).mean(1).view(3, 4).mean(1)
    assert torch.allclose(((out.recon - x) ** 2).flatten(1).mean(1), per_tile)
    whole = MODELS["lamp_ae"]((1, 28, 28), 6)
    assert whole(x).z.shape == (3, 6)
    with pytest.raises(ValueError, match=r"lamp_ae patches 3 must divide the image's 28 x 28"):
        MODELS["lamp_ae"]((1, 28, 28), 6, patches=3)


@pytest.mark.slow
def test_a_patch_wise_lamp_cell_trains_and_scores_whole_images():
    cell = Cell(study="t", dataset="digits", model="lamp_ae", model_params='{"patches":2}',
                loss="lamp", latent_dim=4, batch_size=16, epochs=2, max_train=48, max_test=60)
    *epochs, final = list(run_cell(cell))
    assert final["status"] == "complete" and len(final["scores"]) == 60
    assert 0 <= final["auroc"] <= 1 and epochs[-1]["train_mse"] < epochs[0]["train_mse"] * 1.5


@pytest.mark.parametrize("sampling, power", [("logvar", 0.5), ("log_sigma", 1.0)])
def test_mlp_vae_samples_with_sigma_of_its_second_output_as_chosen(sampling, power):
    """z = a + sigma * noise with sigma = e^(b / 2) (b a log-variance, the default) or
    sigma = e^b (the paper's sec. 3: b the log of the standard deviation)."""
    torch.manual_seed(0)
    model = MODELS["mlp_vae"]((1, 2, 2), 3, hidden=[4], sampling=sampling).train()
    x = torch.rand(5, 1, 2, 2)
    torch.manual_seed(7)
    out = model(x)
    torch.manual_seed(7)
    noise = torch.randn(5, 3)
    want = model.decode(out.mu + torch.exp(power * out.logvar) * noise)
    assert torch.allclose(out.recon, want)
    other = 1.5 - power  # the other parametrisation gives another reconstruction
    assert not torch.allclose(out.recon, model.decode(out.mu + torch.exp(other * out.logvar)
                                                      * noise))
    assert torch.equal(model.eval()(x).recon, model.decode(out.mu))  # evaluation: the mean
    with pytest.raises(ValueError, match="mlp_vae sampling 'sigma' is not allowed"):
        MODELS["mlp_vae"]((1, 2, 2), 3, sampling="sigma")
