"""Per-model image preprocessing, as each paper feeds its model. Registry: PREPROCESS.

Datasets give float32 NCHW images in [0, 1]. The LMSE, LAMP and AE-vs-VAE models take
them as they are; IAEAD's CAE takes them zero-padded to at least 32x32 (MNIST's 28 -> 32,
as its code pads before scaling) and scaled to [-1, 1].

Everything the trainer measures on images (train_mse, test_mse_*, the recon_mse score)
is on the scale the model sees: for iaead_cae an MSE is 4x the [0, 1] one and includes
the padding. Compare such numbers within one model, not across models of different
preprocessing (AUROC is unaffected: it depends on the order of scores only).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

IAEAD_SIDE = 32  # pixels


def unit(x: np.ndarray) -> np.ndarray:
    """Images in [0, 1], unchanged."""
    return x


def pad_to_side(x: np.ndarray, side: int, value: float = 0.0) -> np.ndarray:
    """Pads H and W (evenly, the extra pixel after) up to ``side``; larger sides stay."""
    h, w = x.shape[-2:]
    dh, dw = max(side - h, 0), max(side - w, 0)
    if not dh and not dw:
        return x
    widths = ((0, 0), (0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2))
    return np.pad(x, widths, constant_values=value)


def iaead_signed(x: np.ndarray) -> np.ndarray:
    """IAEAD code: pad with black to 32x32, then 2 * x - 1 (so the padding is -1)."""
    return (2.0 * pad_to_side(x, IAEAD_SIDE) - 1.0).astype(np.float32)


PREPROCESS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "cae": unit,
    "lamp_ae": unit,
    "iaead_cae": iaead_signed,
    "mlp_ae": unit,
    "mlp_vae": unit,
}
# The value range each model's input and reconstruction are on.
VALUE_RANGE: dict[str, tuple[float, float]] = {
    name: (-1.0, 1.0) if fn is iaead_signed else (0.0, 1.0) for name, fn in PREPROCESS.items()
}


def preprocess(model: str, x: np.ndarray) -> np.ndarray:
    """The images as ``model`` takes them.

    Raises:
        KeyError: for a model with no preprocessing entry, listing the choices.
    """
    if model not in PREPROCESS:
        raise KeyError(
            f"unknown model {model!r} for preprocessing; choose from {sorted(PREPROCESS)}"
        )
    return PREPROCESS[model](x)
