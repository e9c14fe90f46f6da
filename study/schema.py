"""The Parquet schema: the contract between the study layer and the analysis layer.

Pure pyarrow; importing it pulls in neither torch nor ray.
"""

from __future__ import annotations

import pyarrow as pa

from study.cell import CELL_FIELDS, CELL_TYPES

_ARROW = {str: pa.string(), int: pa.int64(), float: pa.float64()}

STATUSES = ("complete", "diverged", "failed")

TRIALS = pa.schema(
    [pa.field(name, _ARROW[CELL_TYPES[name]]) for name in CELL_FIELDS]
    + [
        pa.field("cell_id", pa.string()),
        pa.field("loss_label", pa.string()),
        pa.field("model_label", pa.string()),
        pa.field("status", pa.string()),
        pa.field("error", pa.string()),
        pa.field("auroc", pa.float64()),
        pa.field("aupr_in", pa.float64()),
        pa.field("aupr_out", pa.float64()),
        pa.field("final_train_loss", pa.float64()),
        pa.field("final_train_mse", pa.float64()),
        pa.field("epochs_run", pa.int64()),
        pa.field("wall_s", pa.float64()),
        pa.field("train_samples_per_s", pa.float64()),
        pa.field("device", pa.string()),
        pa.field("host", pa.string()),
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
