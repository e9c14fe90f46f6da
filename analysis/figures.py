"""PNG figures for reports (matplotlib, Agg backend: no display needed).

Every figure takes the records of a statistic and a path, writes the PNG and returns
the path. Colours are fixed per label (sorted), so one loss has one colour everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "legend.fontsize": 9})

STYLES = ("-", "--", ":", "-.")  # one per line, so a mean line never hides another
MARKERS = ("o", "s", "^", "D", "v", "P")

PANELS = (
    ("loss_mean", "loss_std", "objective (train_loss)", True),
    ("mse_mean", "mse_std", "common scale (train_mse)", True),
    ("mse_cv", None, "CV of train_mse across cells", False),
)


def palette(labels: Sequence[str]) -> dict[str, Any]:
    """A fixed colour per label (tab10 order over the sorted labels)."""
    unique = sorted(set(labels))
    cmap = plt.get_cmap("tab10" if len(unique) <= 10 else "tab20")
    return {label: cmap(i % cmap.N) for i, label in enumerate(unique)}


def line_label(record: dict[str, Any], models: set[str]) -> str:
    """'loss', or 'loss · model' when the records span several models."""
    return record["loss"] if len(models) < 2 else f"{record['loss']} · {record['model']}"


def _plain_log_ticks(ax) -> None:
    """Decimal tick labels (0.05, not 5×10⁻²) on a log axis."""
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(fmt)
    # label the 2x and 5x minor ticks too, so a band spanning less than a decade is readable
    ax.yaxis.set_minor_formatter(
        FuncFormatter(lambda v, _: f"{v:g}" if f"{v:e}"[0] in "25" else ""))


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def loss_bands(convergence: list[dict[str, Any]], path: Path) -> Path:
    """Per dataset: mean ± std across cells per epoch of the objective and of train_mse
    (log scale, labelled so), and the CV of train_mse; one line per loss. The spread
    across cells describes the grid (hyperparameters and seeds pooled), not stability."""
    datasets = sorted({r["dataset"] for r in convergence})
    models = {r["model"] for r in convergence}
    colours = palette([line_label(r, models) for r in convergence])
    fig, axes = plt.subplots(len(datasets), 3, figsize=(16, 3.8 * len(datasets)),
                             squeeze=False, layout="constrained")
    for row, dataset in enumerate(datasets):
        mine = [r for r in convergence if r["dataset"] == dataset]
        for col, (mean_key, std_key, title, log) in enumerate(PANELS):
            ax = axes[row][col]
            for i, label in enumerate(sorted({line_label(r, models) for r in mine})):
                sel = [r for r in mine if line_label(r, models) == label]
                epochs = np.array([r["epoch"] for r in sel])
                mean = np.array([r[mean_key] for r in sel], dtype=float)
                style = STYLES[i % len(STYLES)]
                ax.plot(epochs, mean, color=colours[label], lw=2, ls=style, zorder=3 + i,
                        label=f"{label} (n={max(r['n_cells'] for r in sel)})")
                if std_key:  # a light fill, its edges drawn in the line's style: bands
                    std = np.nan_to_num(np.array([r[std_key] for r in sel], dtype=float))
                    low = np.maximum(mean - std, mean * 0.05) if log else mean - std
                    ax.fill_between(epochs, low, mean + std, alpha=0.1, color=colours[label],
                                    lw=0)  # that overlap stay told apart by their edges
                    for edge in (low, mean + std):
                        ax.plot(epochs, edge, color=colours[label], lw=0.8, ls=style,
                                alpha=0.7)
            ax.set_yscale("log" if log else "linear")
            if log:
                _plain_log_ticks(ax)
            ax.set_title(f"{dataset}: {title}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(("mean ± std across cells" + (" (log scale)" if log else ""))
                          if std_key else "std / mean (CV)")
            ax.grid(alpha=0.3, which="both")
        # one legend per dataset, outside the panels, so no line is hidden under it
        axes[row][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    return save(fig, path)


def delta_distributions(
    pairs: list[dict[str, Any]], baseline: str, metric: str, group: str, path: Path
) -> Path:
    """One panel per compared value (rows) and dataset (columns): the paired deltas per
    group as boxes with every pair as a dot, 'all' pooled at the left; 0 dashed."""
    values = sorted({p["value"] for p in pairs})
    datasets = sorted({p["dataset"] for p in pairs})
    fig, axes = plt.subplots(len(values), len(datasets),
                             figsize=(max(7, 6.5 * len(datasets)), 3.4 * len(values)),
                             squeeze=False, layout="constrained")
    rng = np.random.default_rng(0)  # jitter only
    for (row, value), (col, dataset) in ((r, c) for r in enumerate(values)
                                         for c in enumerate(datasets)):
        ax = axes[row][col]
        mine = [p for p in pairs if (p["dataset"], p["value"]) == (dataset, value)]
        if not mine:
            ax.set_axis_off()
            continue
        groups = sorted({p[group] for p in mine}, key=lambda g: (str(type(g)), g))
        data = [[p["delta"] for p in mine]] + [[p["delta"] for p in mine if p[group] == g]
                                               for g in groups]
        ax.boxplot(data, widths=0.55, showfliers=False, medianprops={"color": "black"})
        for i, deltas in enumerate(data, start=1):
            x = i + rng.uniform(-0.18, 0.18, len(deltas))
            ax.scatter(x, deltas, s=12, alpha=0.6, color="tab:red" if i == 1 else "tab:blue")
        ax.axhline(0, color="grey", ls="--", lw=1)
        ax.set_xticks(range(1, len(data) + 1), ["all"] + [str(g) for g in groups])
        ax.set_xlabel(group)
        ax.set_ylabel(f"Δ {metric}")
        ax.set_title(f"{dataset}: {value} − {baseline}, {len(mine)} pairs")
        ax.grid(alpha=0.3, axis="y")
    return save(fig, path)


def auroc_curves(curves: list[dict[str, Any]], traces: list[dict[str, Any]], path: Path,
                 deltas: list[dict[str, Any]] = (), baseline: str = "") -> Path:
    """Per dataset: test AUROC per epoch, mean ± std across cells per loss (each its own
    line style, so none hides another) and a few single trials (thin), as IAEAD fig. 3;
    with ``deltas``, a second panel: the paired difference from the baseline per epoch."""
    datasets = sorted({r["dataset"] for r in curves})
    models = {r["model"] for r in curves}
    colours = palette([line_label(r, models) for r in curves])
    columns = 2 if deltas else 1
    fig, axes = plt.subplots(len(datasets), columns, figsize=(7 * columns + 3, 4.2 * len(datasets)),
                             squeeze=False, layout="constrained")
    for row, dataset in enumerate(datasets):
        ax = axes[row][0]
        _traces(ax, [t for t in traces if t["dataset"] == dataset], models, colours)
        labels = sorted({line_label(r, models) for r in curves if r["dataset"] == dataset})
        for i, label in enumerate(labels):
            sel = [r for r in curves if r["dataset"] == dataset and line_label(r, models) == label]
            epochs = np.array([r["epoch"] for r in sel])
            mean = np.array([r["auroc_mean"] for r in sel], dtype=float)
            std = np.nan_to_num(np.array([r["auroc_std"] for r in sel], dtype=float))
            ax.fill_between(epochs, mean - std, mean + std, color=colours[label], alpha=0.12)
            ax.plot(epochs, mean, color=colours[label], lw=2, ls=STYLES[i % len(STYLES)],
                    marker=MARKERS[i % len(MARKERS)], ms=4, markevery=max(1, len(epochs) // 12),
                    label=f"{label} mean ± std (n={max(r['n_cells'] for r in sel)})", zorder=3 + i)
        lowest = min([t["test_auroc"] for t in traces if t["dataset"] == dataset
                      and t["test_auroc"] is not None] or [1.0])
        if lowest < 0.55:  # trials near or below chance: the line says where chance is
            ax.axhline(0.5, color="grey", ls=":", lw=1, label="chance (0.5)")
        ax.set_title(f"{dataset}: test AUROC per epoch (thin: single trials)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("AUROC")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        if deltas:
            _delta_panel(axes[row][1], [d for d in deltas if d["dataset"] == dataset],
                         baseline, colours)
    return save(fig, path)


def _traces(ax, traces: list[dict[str, Any]], models: set[str], colours: dict) -> None:
    for r_id in sorted({(line_label(t, models), t["cell_id"]) for t in traces}):
        sel = [t for t in traces if (line_label(t, models), t["cell_id"]) == r_id]
        ax.plot([t["epoch"] for t in sel], [t["test_auroc"] for t in sel],
                color=colours.get(r_id[0], "grey"), lw=0.7, alpha=0.35)


def _delta_panel(ax, deltas: list[dict[str, Any]], baseline: str, colours: dict) -> None:
    """Mean paired AUROC difference from the baseline per epoch, ± SD across pairs."""
    for i, value in enumerate(sorted({d["value"] for d in deltas})):
        sel = [d for d in deltas if d["value"] == value]
        epochs = np.array([d["epoch"] for d in sel])
        mean = np.array([d["delta_mean"] for d in sel], dtype=float)
        sd = np.nan_to_num(np.array([d["delta_sd"] for d in sel], dtype=float))
        colour = colours.get(value, f"C{i}")
        ax.fill_between(epochs, mean - sd, mean + sd, color=colour, alpha=0.15)
        ax.plot(epochs, mean, color=colour, lw=2, ls=STYLES[i % len(STYLES)],
                label=f"{value} − {baseline} (n={max(d['n_pairs'] for d in sel)} pairs)")
    ax.axhline(0, color="grey", ls="--", lw=1)
    ax.set_title(f"paired Δ test AUROC per epoch (± SD across pairs; above 0: better than "
                 f"{baseline})", fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"Δ AUROC against {baseline}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)


def seed_scatter(units: list[dict[str, Any]], baseline: str, path: Path) -> Path:
    """Per dataset and measure: each unit's seed SD (pooled over its paired
    configurations), the baseline's (x) against the other value's (y), log axes; under the
    diagonal the other value is steadier from seed to seed."""
    panels = sorted({(u["dataset"], u["measure"]) for u in units}, key=str)
    colours = palette([u["value"] for u in units] + [baseline])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 5.2),
                             squeeze=False, layout="constrained")
    for ax, (dataset, measure) in zip(axes[0], panels, strict=True):
        mine = [u for u in units if (u["dataset"], u["measure"]) == (dataset, measure)]
        values = [v for u in mine for v in (u["baseline_seed_sd"], u["other_seed_sd"])]
        floor = min([v for v in values if v > 0] or [1e-4]) / 2  # SD 0 drawn at the floor
        for value in sorted({u["value"] for u in mine}):
            sel = [u for u in mine if u["value"] == value]
            ax.scatter([max(u["baseline_seed_sd"], floor) for u in sel],
                       [max(u["other_seed_sd"], floor) for u in sel], s=30, alpha=0.8,
                       color=colours[value], label=f"{value} ({len(sel)} units)")
        top = max(values + [floor * 4]) * 1.5
        ax.plot([floor, top], [floor, top], color="grey", ls="--", lw=1, label="equal")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(floor * 0.8, top)
        ax.set_ylim(floor * 0.8, top)
        others = sorted({u["value"] for u in mine})
        other = others[0] if len(others) == 1 else "other value"
        ax.text(0.97, 0.03, f"below the line: {other} steadier", transform=ax.transAxes,
                ha="right", fontsize=9)
        ax.text(0.03, 0.97, f"above: {baseline} steadier", transform=ax.transAxes, va="top",
                fontsize=9)
        ax.set_xlabel(f"{baseline}: seed SD of {measure} (log scale)")
        ax.set_ylabel(f"{other}: seed SD of {measure} (log scale)")
        ax.set_title(f"{dataset}: seed-to-seed SD of {measure}, per unit")
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="upper left", bbox_to_anchor=(0, 0.92), fontsize=8)
    return save(fig, path)
