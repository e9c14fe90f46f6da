"""The store contract: the Parquet schemas study/ writes and analysis/ reads, the row
statuses, and where each table lives under results/<study>/.

Pure pyarrow; importing it pulls in neither torch nor ray.
"""

from __future__ import annotations

import pyarrow as pa

from study.cell import CELL_FIELDS, CELL_TYPES

# Python type of a cell field -> its Parquet column type.
ARROW_TYPES: dict[type, pa.DataType] = {str: pa.string(), int: pa.int64(), float: pa.float64()}

# pruned: a tuning trial its search stopped early (ASHA, study/tuned_plan.py); it has
# epochs and validation figures up to the stop, no test metrics.
STATUSES = ("complete", "diverged", "failed", "pruned")
# A stored row in one of these is final: a resubmission does not run its cell again, and
# in a tuned study it spends a trial of its group's budget. 'failed' (a crash, a lost
# node) is not: its cell runs again, its trial is given back to the budget.
SETTLED = ("complete", "diverged", "pruned")

TRIALS = pa.schema(
    [pa.field(name, ARROW_TYPES[CELL_TYPES[name]]) for name in CELL_FIELDS]
    + [
        pa.field("cell_id", pa.string()),
        pa.field("loss_label", pa.string()),
        pa.field("model_label", pa.string()),
        pa.field("status", pa.string()),
        pa.field("error", pa.string()),
        pa.field("auroc", pa.float64()),
        pa.field("aupr_in", pa.float64()),
        pa.field("aupr_out", pa.float64()),
        # AUPR as the trapezoidal area under the precision-recall curve (IAEAD's code and
        # tables; trainables/metrics.py); aupr_in/aupr_out are average precision. NULL in
        # rows stored before these columns existed (recompute from scores if needed).
        pa.field("aupr_in_trapz", pa.float64()),
        pa.field("aupr_out_trapz", pa.float64()),
        pa.field("final_train_loss", pa.float64()),
        pa.field("final_train_mse", pa.float64()),
        pa.field("epochs_run", pa.int64()),
        pa.field("wall_s", pa.float64()),
        pa.field("train_samples_per_s", pa.float64()),
        pa.field("device", pa.string()),
        pa.field("host", pa.string()),
        # Where a trial ran on a cluster (issue 5): Ray node id (hosts can share a machine),
        # the GPU ids Ray assigned ("" = none), the GPU share reserved (0.25 = a quarter),
        # and how many attempts of the trial died with their process or node (Tune retries).
        pa.field("node_id", pa.string()),
        pa.field("gpu_ids", pa.string()),
        pa.field("gpu_share", pa.float64()),
        pa.field("retries", pa.int64()),
        # The trial process's log (Ray's worker-*.err: stderr, tracebacks) on node_id
        # (issue 15); NULL in rows stored before.
        pa.field("log_path", pa.string()),
        # The Tune trial that ran the cell, how many cells it ran (a pack: see
        # study/packing.py) and the trial's seconds from its start to this cell's end.
        pa.field("trial_id", pa.string()),
        pa.field("trial_cells", pa.int64()),
        pa.field("trial_elapsed_s", pa.float64()),
        # Validation figures (cells with val_fraction > 0; trainables.validation): the mean
        # recon MSE of held-out training images (no labels) and, for one_class, the AUROC
        # against held-out training images of the other classes (labels of the train split).
        pa.field("val_recon_mse", pa.float64()),
        pa.field("val_auroc", pa.float64()),
        # Tuned studies (search: optuna, study/tuned_groups.py): the scientific combination
        # a row tunes, its order in that group's search, the tuned fields (comma-separated)
        # and the column the search selected on. NULL for grid rows.
        pa.field("group_id", pa.string()),
        pa.field("group_trial", pa.int64()),
        pa.field("tuned_axes", pa.string()),
        pa.field("tune_metric", pa.string()),
        pa.field("adstudy_version", pa.string()),
        pa.field("torch_version", pa.string()),
        pa.field("ray_version", pa.string()),
        pa.field("git_sha", pa.string()),
        pa.field("started_at", pa.string()),
        pa.field("finished_at", pa.string()),
    ]
)

EPOCHS = pa.schema(
    [
        pa.field("study", pa.string()),
        pa.field("cell_id", pa.string()),
        pa.field("epoch", pa.int64()),
        pa.field("train_loss", pa.float64()),
        pa.field("train_mse", pa.float64()),
        pa.field("test_auroc", pa.float64()),
        pa.field("test_mse_normal", pa.float64()),
        pa.field("test_mse_anomalous", pa.float64()),
        pa.field("grad_norm", pa.float64()),
        pa.field("wall_s", pa.float64()),
        pa.field("val_recon_mse", pa.float64()),
        pa.field("val_auroc", pa.float64()),
    ]
)

SCORES = pa.schema(
    [
        pa.field("study", pa.string()),
        pa.field("cell_id", pa.string()),
        pa.field("index", pa.int64()),
        pa.field("label", pa.int64()),
        pa.field("score", pa.float64()),
    ]
)

TABLES: dict[str, pa.Schema] = {"trials": TRIALS, "epochs": EPOCHS, "scores": SCORES}

# Loss landscapes (`adstudy landscape`, study/landscape_store.py): every measured point,
# and one summary row per trial under results/<study>/landscape/{points,summary}/.
LANDSCAPE_POINTS = pa.schema([
    ("study", pa.string()), ("cell_id", pa.string()), ("kind", pa.string()),
    ("direction", pa.int64()), ("alpha", pa.float64()), ("beta", pa.float64()),
    ("loss", pa.float64()), ("mse", pa.float64()),
])
LANDSCAPE_FIGURES = ("loss_center", "loss_rise", "sharpness", "mse_center", "mse_rise",
                     "sharpness_mse")
# The cell fields a summary row repeats, so a table needs no join with trials.
LANDSCAPE_CELL = ("dataset", "normal_class", "model", "latent_dim", "loss", "optimizer", "lr",
                  "batch_size", "epochs", "seed")
# trainables.landscape.Options, as the summary's landscape_* columns.
LANDSCAPE_OPTIONS = {"directions": pa.int64(), "points": pa.int64(), "grid": pa.int64(),
                     "radius": pa.float64(), "samples": pa.int64(), "batch": pa.int64(),
                     "seed": pa.int64()}
LANDSCAPE_SUMMARY = pa.schema([
    ("study", pa.string()), ("cell_id", pa.string()),
    *[(name, ARROW_TYPES[CELL_TYPES[name]]) for name in LANDSCAPE_CELL],
    ("loss_label", pa.string()), ("model_label", pa.string()),
    *[(f"landscape_{name}", kind) for name, kind in LANDSCAPE_OPTIONS.items()],
    *[(name, pa.float64()) for name in LANDSCAPE_FIGURES],
    ("device", pa.string()), ("created_at", pa.string()),
])
# The DuckDB views (analysis.views) over every study's landscape folders.
LANDSCAPE_VIEWS = {"landscape": ("landscape/summary", LANDSCAPE_SUMMARY),
                   "landscape_points": ("landscape/points", LANDSCAPE_POINTS)}
