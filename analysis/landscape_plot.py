"""Figures and a summary table of stored loss landscapes (study.landscape_store); no torch.

``landscape_1d.png``: per group (a column such as batch_size), the mean over cells and
directions of L(theta + a d) / L(theta) for each loss, on the objective and on the MSE.
``landscape_2d.png``: MSE contours of one cell per (loss, group) on the 2-D grid, as the
LAMP paper's fig. 3 (denser contours = steeper).
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from analysis.views import rows
from study.schema import LANDSCAPE_POINTS
from study.store import ResultsStore


def sharpness_table(summaries: list[dict[str, Any]], by: str = "batch_size") -> list[dict]:
    """Per (loss, ``by``): cells and mean, min and max of both sharpness figures.

    Raises:
        KeyError: when the summaries lack the column ``by``.
    """
    import duckdb
    import pyarrow as pa

    if summaries and by not in summaries[0]:
        raise KeyError(f"landscape summaries have no column {by!r}; choose from "
                       f"{sorted(summaries[0])}")
    if not summaries:
        return []
    con = duckdb.connect()
    con.register("summary", pa.Table.from_pylist(summaries))
    return rows(con, f"""
        SELECT loss_label AS loss, "{by}", count(*) AS n_cells,
               avg(sharpness) AS sharpness, avg(sharpness_mse) AS sharpness_mse,
               min(sharpness_mse) AS sharpness_mse_min, max(sharpness_mse) AS sharpness_mse_max
        FROM summary GROUP BY ALL ORDER BY "{by}", loss""")


def read_points(store: ResultsStore) -> dict[str, list[dict]]:
    """cell_id -> its stored points (read through the store: checked files only)."""
    out: dict[str, list[dict]] = defaultdict(list)
    for row in store.read_folder("landscape/points", LANDSCAPE_POINTS):
        out[row["cell_id"]].append(row)
    return out


def plot_landscapes(folder: str | Path, summaries: list[dict], by: str = "batch_size",
                    store: ResultsStore | None = None) -> list[Path]:
    """Writes landscape_1d.png and (when a 2-D grid was measured) landscape_2d.png into
    ``folder`` (results/<study>/landscape); returns the files written. The points are
    read from ``store`` (default: the study whose landscape folder ``folder`` is); on an
    object store the figures are drawn in a temp folder and stored through the store."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    if store is None:
        store = ResultsStore(str(folder.parent.parent), folder.parent.name)
    points = read_points(store)
    if not store.local:
        with tempfile.TemporaryDirectory() as temp:
            drawn = _plot_all(plt, Path(temp), points, summaries, by)
            for path in drawn:
                store.write_bytes("landscape", path.name, path.read_bytes())
        return [Path(f"{store.shown}/landscape/{p.name}") for p in drawn]
    return _plot_all(plt, folder, points, summaries, by)


def _plot_all(plt, folder: Path, points, summaries, by) -> list[Path]:
    groups = sorted({s[by] for s in summaries})
    losses = sorted({s["loss_label"] for s in summaries})
    if not groups:
        return []
    written = [_plot_1d(plt, folder, points, summaries, by, groups, losses)]
    if any(p["kind"] == "2d" for cell in points.values() for p in cell):
        written.append(_plot_2d(plt, folder, points, summaries, by, groups, losses))
    return written


def _plot_1d(plt, folder, points, summaries, by, groups, losses) -> Path:
    fig, axes = plt.subplots(2, len(groups), figsize=(3.2 * len(groups), 6), squeeze=False)
    for col, group in enumerate(groups):
        for loss in losses:
            cells = [s for s in summaries if s[by] == group and s["loss_label"] == loss]
            for row, (key, centre) in enumerate((("loss", "loss_center"), ("mse", "mse_center"))):
                curves: dict[float, list[float]] = defaultdict(list)
                for s in cells:
                    for p in points.get(s["cell_id"], []):
                        if p["kind"] == "1d" and s[centre]:
                            curves[p["alpha"]].append(p[key] / s[centre])
                if curves:
                    alphas = sorted(curves)
                    axes[row][col].plot(alphas, [np.mean(curves[a]) for a in alphas], label=loss)
        axes[0][col].set_title(f"{by} = {group}")
        axes[1][col].set_xlabel("alpha (filter-normalised)")
    axes[0][0].set_ylabel("objective / at trained weights")
    axes[1][0].set_ylabel("MSE / at trained weights")
    for ax in axes.flat:
        ax.set_yscale("log")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    path = folder / "landscape_1d.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_2d(plt, folder, points, summaries, by, groups, losses) -> Path:
    fig, axes = plt.subplots(len(losses), len(groups), figsize=(3 * len(groups), 3 * len(losses)),
                             squeeze=False)
    for row, loss in enumerate(losses):
        for col, group in enumerate(groups):
            ax = axes[row][col]
            cells = [s for s in summaries if s[by] == group and s["loss_label"] == loss]
            grid = [p for p in points.get(cells[0]["cell_id"], []) if p["kind"] == "2d"] \
                if cells else []
            if grid:
                a = sorted({p["alpha"] for p in grid})
                b = sorted({p["beta"] for p in grid})
                z = np.full((len(b), len(a)), np.nan)
                for p in grid:
                    z[b.index(p["beta"]), a.index(p["alpha"])] = p["mse"]
                ax.contour(a, b, np.log10(np.maximum(z, 1e-12)), levels=15)
            ax.set_title(f"{loss}, {by} {group}", fontsize=8)
    fig.suptitle("log10 MSE around the trained weights (one cell each)", fontsize=9)
    fig.tight_layout()
    path = folder / "landscape_2d.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
