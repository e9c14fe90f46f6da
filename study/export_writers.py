"""The trackers study.export writes to: TensorBoard event files and MLflow runs.

Each writer takes the study's CellRuns and returns (written, skipped): a cell exported
before (its TensorBoard run folder exists; an MLflow run tagged with its cell id is in the
experiment) is skipped, so exporting again after a resumed study adds only the new cells.
The trackers' packages are optional extras, imported here only.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

from study.export_runs import EPOCH_METRICS, CellRun

MLFLOW_BATCH = 1000  # metrics per log_batch call (MLflow's limit)
MLFLOW_PARAMS = 100  # params per log_batch call (MLflow's limit)


def needs(package: str, extra: str):
    """Imports ``package``, or says which extra installs it."""
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError as err:
        raise ImportError(f"adstudy export --{extra} needs the {package.split('.')[0]!r} "
                          f"package: pip install 'adstudy[{extra}]' (or pip install "
                          f"{extra})") from err


def run_folder(run: CellRun) -> str:
    """A run's folder under the TensorBoard root: <study>/<label>/<cell_id> (the label's
    spaces as commas; characters a file name may not hold as _)."""
    label = re.sub(r"[^A-Za-z0-9=.,_+()\-]", "_", run.label.replace(" ", ","))
    return os.path.join(run.study, label, run.cell_id)


def write_tensorboard(runs: Sequence[CellRun], root: str) -> tuple[int, int]:
    """One TensorBoard run per cell: scalars ``epoch/<metric>`` by epoch, the final
    metrics as scalars at the last epoch, and the HParams plugin's record of the run's
    hyperparameters and those metrics (its table and parallel-coordinates views)."""
    needs("tensorboard", "tensorboard")
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    written = skipped = 0
    for run in runs:
        folder = os.path.join(root, run_folder(run))
        if os.path.isdir(folder):
            skipped += 1
            continue
        writer = SummaryWriter(log_dir=folder)
        try:
            for epoch in run.epochs:
                for key, value in epoch.items():
                    if key != "epoch":
                        writer.add_scalar(f"epoch/{key}", value, epoch["epoch"])
            last = max((e["epoch"] for e in run.epochs), default=0)
            for key, value in run.final.items():
                writer.add_scalar(key, value, last)
            hp = {k: v for k, v in run.params.items() if v is not None} | {
                "status": run.status}
            for summary in hparams(hp, dict(run.final)):
                writer.file_writer.add_summary(summary)
            writer.add_text("cell", f"{run.label} (cell {run.cell_id}, {run.status})")
        finally:
            writer.close()
        written += 1
    return written, skipped


def write_mlflow(runs: Sequence[CellRun], uri: str, experiment: str) -> tuple[int, int]:
    """One MLflow run per cell in ``experiment`` at tracking ``uri``: params, per-epoch
    metrics (step = epoch), the final metrics (step = the last epoch), tags."""
    needs("mlflow", "mlflow")
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)
    except MlflowException as err:  # e.g. MLflow 3's file store, kept behind an opt-in
        raise ValueError(f"MLflow refused tracking URI {uri!r}: {err.message}") from err
    exp_id = found.experiment_id if found else client.create_experiment(experiment)
    done = exported_cells(client, exp_id)
    written = skipped = 0
    for run in runs:
        if run.cell_id in done:
            skipped += 1
            continue
        tags = {f"adstudy.{k}": v for k, v in run.tags.items()} | {"adstudy.study": run.study}
        started = run.started_ms or int(time.time() * 1000)
        created = client.create_run(exp_id, start_time=started, tags=tags, run_name=run.label)
        run_id = created.info.run_id
        params = [Param(k, str(v)) for k, v in run.params.items()]
        for chunk in chunks(params, MLFLOW_PARAMS):
            client.log_batch(run_id, params=chunk)
        client.log_batch(run_id, tags=[RunTag("mlflow.note.content", run.label)])
        for chunk in chunks(list(metrics(run, started, Metric)), MLFLOW_BATCH):
            client.log_batch(run_id, metrics=chunk)
        status = "FAILED" if run.status == "failed" else "FINISHED"
        client.set_terminated(run_id, status=status, end_time=run.finished_ms or started)
        written += 1
    return written, skipped


def exported_cells(client: Any, exp_id: str) -> set[str]:
    """Cell ids of the runs the experiment holds already (every page of the search)."""
    found, token = set(), None
    while True:
        page = client.search_runs([exp_id], max_results=1000, page_token=token)
        found |= {r.data.tags.get("adstudy.cell_id") for r in page}
        token = page.token
        if not token:
            return found


def metrics(run: CellRun, started: int, metric: type) -> Iterator[Any]:
    """The run's metrics as MLflow Metric entities."""
    for epoch in run.epochs:
        for key, value in epoch.items():
            if key != "epoch":
                yield metric(key, value, started, epoch["epoch"])
    last = max((e["epoch"] for e in run.epochs), default=0)
    for key, value in run.final.items():  # a final figure named as a curve: final_<name>
        yield metric(f"final_{key}" if key in EPOCH_METRICS else key, value, started, last)


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
