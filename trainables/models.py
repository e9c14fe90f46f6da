"""Autoencoders. Registry: MODELS, each ``build(image_shape, latent_dim, **params)``.

Every model's forward returns an Output; ``encode`` gives the embedding used for scoring.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn


@dataclasses.dataclass
class Output:
    """A forward pass: reconstruction, embedding and (VAE only) the posterior's parameters."""

    recon: torch.Tensor
    z: torch.Tensor
    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None


def conv_out(size: int) -> int:
    """Spatial size after a 3x3 convolution with stride 2 and padding 1."""
    return (size - 1) // 2 + 1


class ConvAutoencoder(nn.Module):
    """LMSE paper's CAE: conv 3x3 stride 2 (16, 32, 64 channels) + ReLU, a linear layer
    to the latent vector, and the mirrored decoder with a sigmoid output."""

    def __init__(self, image_shape: Sequence[int], latent_dim: int, channels=(16, 32, 64)):
        super().__init__()
        c, h, w = image_shape
        sizes = [(h, w)]
        layers: list[nn.Module] = []
        for c_in, c_out in zip((c, *channels[:-1]), channels, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
            sizes.append((conv_out(sizes[-1][0]), conv_out(sizes[-1][1])))
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.inner = (channels[-1], *sizes[-1])
        self.to_latent = nn.Linear(math.prod(self.inner), latent_dim)
        self.from_latent = nn.Sequential(nn.Linear(latent_dim, math.prod(self.inner)), nn.ReLU())
        decoder: list[nn.Module] = []
        outs = (*reversed(channels[:-1]), c)
        for i, (c_in, c_out) in enumerate(zip(reversed(channels), outs, strict=True)):
            (h_in, w_in), (h_to, w_to) = sizes[-1 - i], sizes[-2 - i]
            pad = (h_to - (2 * h_in - 1), w_to - (2 * w_in - 1))
            decoder.append(nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=pad))
            decoder.append(nn.Sigmoid() if i == len(channels) - 1 else nn.ReLU())
        self.decoder = nn.Sequential(*decoder)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_latent(self.encoder(x))

    def forward(self, x: torch.Tensor) -> Output:
        z = self.encode(x)
        recon = self.decoder(self.from_latent(z).view(-1, *self.inner))
        return Output(recon=recon, z=z)


def mlp(widths: Sequence[int], last_activation: nn.Module | None) -> nn.Sequential:
    """Dense layers with ReLU between them and ``last_activation`` after the last one."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    if last_activation is not None:
        layers.append(last_activation)
    return nn.Sequential(*layers)


# Weight initialisations of the MLP models: torch's own (Kaiming-uniform weights, uniform
# biases) or Keras' Dense default, which the AE-vs-VAE paper used (Glorot-uniform weights,
# zero biases): its failure modes (dead ReLUs from the signs of the initial weights) depend
# on it.
MLP_INITS = ("torch", "glorot")


def mlp_init(module: nn.Module, init: str) -> None:
    """Re-initialises every Linear layer of ``module`` as ``init`` says.

    Raises:
        ValueError: for an init not in MLP_INITS.
    """
    if init not in MLP_INITS:
        raise ValueError(f"mlp init {init!r} is not allowed; choose from {list(MLP_INITS)}")
    if init == "glorot":
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)


class MlpAutoencoder(nn.Module):
    """AE-vs-VAE paper's A1: dense encoder widths ``hidden`` (ReLU) to a linear bottleneck
    of ``latent_dim``, mirrored decoder, sigmoid output. hidden=[2], latent_dim=1 is A1.
    ``init``: "torch" (default) or "glorot" (Keras' default, as the paper; MLP_INITS)."""

    def __init__(self, image_shape: Sequence[int], latent_dim: int, hidden=(2,),
                 init: str = "torch"):
        super().__init__()
        self.image_shape = tuple(image_shape)
        n = math.prod(image_shape)
        self.encoder = nn.Sequential(nn.Flatten(), mlp([n, *hidden], nn.ReLU()))
        self.to_latent = nn.Linear(hidden[-1], latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden[-1]), nn.ReLU(), mlp([*reversed(hidden), n], nn.Sigmoid())
        )
        mlp_init(self, init)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_latent(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(-1, *self.image_shape)

    def forward(self, x: torch.Tensor) -> Output:
        z = self.encode(x)
        return Output(recon=self.decode(z), z=z)


# How mlp_vae reads its encoder's second output b: "logvar" (b = log sigma^2, so sigma =
# e^(b/2): Kingma & Welling, the Keras example [8] the AE-vs-VAE paper cites, and the
# form in which eq. 1 is the exact KL) or "log_sigma" (sigma = e^b: the paper's sec. 3,
# "b the logarithm of its standard deviation", as the Keras blog [7]'s z_log_sigma; the
# loss is then eq. 1 as printed, as in that blog, not the exact KL of N(a, e^2b)).
SAMPLINGS = ("logvar", "log_sigma")


class MlpVariationalAutoencoder(MlpAutoencoder):
    """AE-vs-VAE paper's A2: A1 with a Gaussian bottleneck, mean a and a second output b
    (``sampling``: SAMPLINGS). Sampling happens in training; evaluation decodes the mean,
    so scores are repeatable. Output.logvar carries b (what eq. 1 reads)."""

    def __init__(self, image_shape: Sequence[int], latent_dim: int, hidden=(2,),
                 init: str = "torch", sampling: str = "logvar"):
        super().__init__(image_shape, latent_dim, hidden, init)
        if sampling not in SAMPLINGS:
            raise ValueError(f"mlp_vae sampling {sampling!r} is not allowed; choose from "
                             f"{list(SAMPLINGS)}")
        self.sigma_of_b = 0.5 if sampling == "logvar" else 1.0  # sigma = e^(k * b)
        self.to_logvar = nn.Linear(hidden[-1], latent_dim)
        mlp_init(self.to_logvar, init)

    def forward(self, x: torch.Tensor) -> Output:
        h = self.encoder(x)
        mu, b = self.to_latent(h), self.to_logvar(h)
        z = mu + torch.exp(self.sigma_of_b * b) * torch.randn_like(mu) if self.training else mu
        return Output(recon=self.decode(z), z=mu, mu=mu, logvar=b)


def spatial_sizes(h: int, w: int, blocks: int) -> list[tuple[int, int]]:
    """(H, W) before and after each of ``blocks`` stride-2 convolutions (3x3, padding 1)."""
    sizes = [(h, w)]
    for _ in range(blocks):
        sizes.append((conv_out(sizes[-1][0]), conv_out(sizes[-1][1])))
    return sizes


def to_patches(x: torch.Tensor, n: int) -> torch.Tensor:
    """[B, C, H, W] cut into an n x n grid: [B * n * n, C, H / n, W / n], row-major per image."""
    b, c, h, w = x.shape
    return (x.reshape(b, c, n, h // n, n, w // n).permute(0, 2, 4, 1, 3, 5)
            .reshape(b * n * n, c, h // n, w // n))


def from_patches(p: torch.Tensor, n: int) -> torch.Tensor:
    """The inverse of to_patches: each image stitched back from its n x n patches."""
    bnn, c, ph, pw = p.shape
    return (p.reshape(bnn // (n * n), n, n, c, ph, pw).permute(0, 3, 1, 4, 2, 5)
            .reshape(bnn // (n * n), c, n * ph, n * pw))


class LampAutoencoder(nn.Module):
    """LAMP paper's AE (section 3.1): encoder blocks conv (stride 2) -> BN -> LeakyReLU, 4
    blocks for inputs up to 32 px and 6 for larger ones (or one block per entry of
    ``widths``); a linear layer to the latent vector and back; decoder blocks upsample ->
    conv -> BN -> LeakyReLU mirroring the encoder, the last one conv -> sigmoid.
    ``kernel_size`` (odd) is one of the paper's tuned hyperparameters, and so is
    ``patches``: patch-wise reconstruction (LAMP sec. 3.1, its ref. [16]): each image is
    cut into patches x patches tiles that the AE (built for one tile, blocks chosen by the
    tile's size) reconstructs separately, as a batch; the reconstruction is stitched back,
    so every loss and score sees whole images (recon_mse: the mean over the image's tiles),
    and the embedding is the image's tiles' latent vectors side by side (patches^2 x
    latent_dim). patches must divide H and W; 1 (default) is the whole image."""

    def __init__(self, image_shape: Sequence[int], latent_dim: int, widths=None,
                 kernel_size: int = 3, negative_slope: float = 0.2, patches: int = 1):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"lamp_ae kernel_size {kernel_size!r} must be odd and >= 1")
        c, h, w = image_shape
        if patches < 1 or h % patches or w % patches:
            raise ValueError(f"lamp_ae patches {patches!r} must divide the image's {h} x {w} "
                             f"pixels (patches x patches tiles of equal size)")
        self.patches = patches
        h, w = h // patches, w // patches
        if not widths:
            widths = (32, 64, 128, 256) if max(h, w) <= 32 else (32, 64, 128, 256, 512, 512)
        sizes, pad = spatial_sizes(h, w, len(widths)), kernel_size // 2
        layers: list[nn.Module] = []
        for c_in, c_out in zip((c, *widths[:-1]), widths, strict=True):
            conv = nn.Conv2d(c_in, c_out, kernel_size, stride=2, padding=pad)
            layers += [conv, nn.BatchNorm2d(c_out), nn.LeakyReLU(negative_slope)]
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.inner = (widths[-1], *sizes[-1])
        self.to_latent = nn.Linear(math.prod(self.inner), latent_dim)
        self.from_latent = nn.Sequential(
            nn.Linear(latent_dim, math.prod(self.inner)), nn.LeakyReLU(negative_slope)
        )
        decoder: list[nn.Module] = []
        outs = (*reversed(widths[:-1]), c)
        for i, (c_in, c_out) in enumerate(zip(reversed(widths), outs, strict=True)):
            decoder += [nn.Upsample(size=sizes[-2 - i]), nn.Conv2d(c_in, c_out, kernel_size,
                                                                   padding=pad)]
            last = i == len(widths) - 1
            decoder += [nn.Sigmoid()] if last else [nn.BatchNorm2d(c_out),
                                                     nn.LeakyReLU(negative_slope)]
        self.decoder = nn.Sequential(*decoder)

    def _tiles(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.patches == 1 else to_patches(x, self.patches)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_latent(self.encoder(self._tiles(x))).reshape(len(x), -1)

    def forward(self, x: torch.Tensor) -> Output:
        z = self.to_latent(self.encoder(self._tiles(x)))
        recon = self.decoder(self.from_latent(z).view(-1, *self.inner))
        if self.patches > 1:
            recon = from_patches(recon, self.patches)
        return Output(recon=recon, z=z.reshape(len(x), -1))


class IaeadAutoencoder(nn.Module):
    """IAEAD's CAE (its public code, models/rae.py): conv 3x3 stride 2 with ``width``,
    2x and 4x channels (64/128/256), each + BN + ReLU; linear to the latent vector + tanh
    (4096 -> 256 for 32x32 inputs); decoder linear + BN + ReLU and ConvTranspose 3x3
    stride 2 (+ BN + ReLU) back to the input size, tanh output for inputs in [-1, 1]
    (trainables.preprocess pads to 32x32 and rescales). Weights initialised as that code:
    Xavier-normal with gain ``init_gain``, BN scales N(1, init_gain), biases 0."""

    def __init__(self, image_shape: Sequence[int], latent_dim: int, width: int = 64,
                 init_gain: float = 0.02):
        super().__init__()
        c, h, w = image_shape
        channels = (width, 2 * width, 4 * width)
        sizes = spatial_sizes(h, w, 3)
        layers: list[nn.Module] = []
        for c_in, c_out in zip((c, *channels[:-1]), channels, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.inner = (channels[-1], *sizes[-1])
        n_inner = math.prod(self.inner)
        self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(n_inner, latent_dim),
                                     nn.Tanh())
        self.from_latent = nn.Sequential(nn.Linear(latent_dim, n_inner),
                                         nn.BatchNorm1d(n_inner), nn.ReLU())
        decoder: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(channels[::-1], (*channels[-2::-1], c),
                                              strict=True)):
            (h_in, w_in), (h_to, w_to) = sizes[-1 - i], sizes[-2 - i]
            pad = (h_to - (2 * h_in - 1), w_to - (2 * w_in - 1))
            decoder.append(nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=pad))
            decoder += [nn.Tanh()] if i == 2 else [nn.BatchNorm2d(c_out), nn.ReLU()]
        self.decoder = nn.Sequential(*decoder)
        self.apply(functools.partial(iaead_init, gain=init_gain))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> Output:
        z = self.encode(x)
        return Output(recon=self.decoder(self.from_latent(z).view(-1, *self.inner)), z=z)


def iaead_init(module: nn.Module, gain: float) -> None:
    """IAEAD code's init_weights(net, 'xavier', gain) for one module."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.xavier_normal_(module.weight, gain=gain)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, gain)
        nn.init.zeros_(module.bias)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "cae": ConvAutoencoder,
    "lamp_ae": LampAutoencoder,
    "iaead_cae": IaeadAutoencoder,
    "mlp_ae": MlpAutoencoder,
    "mlp_vae": MlpVariationalAutoencoder,
}
