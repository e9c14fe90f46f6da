"""PNG figures for reports (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PANELS = (
    ("loss", "objective (train_loss)"),
    ("mse", "common scale (train_mse)"),
)


def loss_bands(convergence: list[dict[str, Any]], path: Path) -> Path:
    """Mean +/- std across cells per epoch, one line per loss, one row per dataset:
    the objective on the left, the common-scale MSE on the right."""
    datasets = sorted({r["dataset"] for r in convergence})
    fig, axes = plt.subplots(
        len(datasets), 2, figsize=(11, 3.6 * len(datasets)), squeeze=False, layout="constrained"
    )
    for row, dataset in enumerate(datasets):
        for col, (prefix, title) in enumerate(PANELS):
            ax = axes[row][col]
            for loss in sorted({r["loss"] for r in convergence if r["dataset"] == dataset}):
                sel = [r for r in convergence if r["dataset"] == dataset and r["loss"] == loss]
                epochs = np.array([r["epoch"] for r in sel])
                mean = np.array([r[f"{prefix}_mean"] for r in sel], dtype=float)
                std = np.nan_to_num(np.array([r[f"{prefix}_std"] for r in sel], dtype=float))
                (line,) = ax.plot(epochs, mean, label=f"{loss} (n={sel[0]['n_cells']})")
                ax.fill_between(epochs, mean - std, mean + std, alpha=0.2, color=line.get_color())
            ax.set_title(f"{dataset}: {title}")
            ax.set_xlabel("epoch")
            ax.set_ylabel("mean ± std across cells")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
