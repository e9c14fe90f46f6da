"""`adstudy landscape`: loss landscapes of a study's stored trials, kept as Parquet.

For every complete trial whose weights the study saved (``run: {save_weights: true}``),
trainables.landscape measures the loss around the weights; the points land in
``results/<study>/landscape/points/<cell_id>.parquet`` and one summary row (the cell's
fields, the options and the sharpness figures) in ``.../landscape/summary/<cell_id>.parquet``,
written under a temporary name and renamed, like the rest of the store. A trial that
already has a summary is skipped unless ``force``; the plots are redrawn every time.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Sequence
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from study.cell import CELL_FIELDS, Cell
from study.errors import StoreError
from study.spec import parse_spec
from study.store import ResultsStore

POINTS = pa.schema([
    ("study", pa.string()), ("cell_id", pa.string()), ("kind", pa.string()),
    ("direction", pa.int64()), ("alpha", pa.float64()), ("beta", pa.float64()),
    ("loss", pa.float64()), ("mse", pa.float64()),
])
FIGURES = ("loss_center", "loss_rise", "sharpness", "mse_center", "mse_rise", "sharpness_mse")
# The cell fields a summary row repeats, so a table needs no join with trials.
SUMMARY_CELL = ("dataset", "normal_class", "model", "latent_dim", "loss", "optimizer", "lr",
                "batch_size", "epochs", "seed")
# trainables.landscape.Options, as the summary's landscape_* columns.
OPTION_TYPES = {"directions": pa.int64(), "points": pa.int64(), "grid": pa.int64(),
                "radius": pa.float64(), "samples": pa.int64(), "batch": pa.int64(),
                "seed": pa.int64()}
_CELL_TYPES = {str: pa.string(), int: pa.int64(), float: pa.float64()}
SUMMARY = pa.schema([
    ("study", pa.string()), ("cell_id", pa.string()),
    *[(name, _CELL_TYPES[type(getattr(Cell(study="s"), name))]) for name in SUMMARY_CELL],
    ("loss_label", pa.string()), ("model_label", pa.string()),
    *[(f"landscape_{name}", kind) for name, kind in OPTION_TYPES.items()],
    *[(name, pa.float64()) for name in FIGURES],
    ("device", pa.string()), ("created_at", pa.string()),
])
# The DuckDB views (analysis.views) over every study's landscape folders.
VIEWS = {"landscape": ("landscape/summary", SUMMARY),
         "landscape_points": ("landscape/points", POINTS)}


def stored_trials(store: ResultsStore, results: str, where: str | None) -> list[dict[str, Any]]:
    """Complete trials of the study (optionally those matching a SQL condition)."""
    from analysis.views import connect, rows

    con = connect(results, [store.study])
    condition = f" AND ({where})" if where else ""
    columns = ", ".join([*CELL_FIELDS, "loss_label", "model_label"])
    return rows(con, f"SELECT {columns} FROM trials WHERE status = 'complete'{condition} "
                     "ORDER BY cell_id")


def run_landscapes(
    study: str, results: str, options: Any, where: str | None = None, device: str = "cpu",
    force: bool = False, out: TextIO | None = None,
) -> list[dict[str, Any]]:
    """Measures and stores the landscape of each chosen trial; returns every summary row.

    Args:
        options: a trainables.landscape.Options.
        where: a SQL condition over the trials view, e.g. "normal_class = 0".
    Raises:
        StoreError: when the study is not stored or saved no weights.
    """
    from trainables.landscape import cell_landscape

    store = ResultsStore(results, study)
    record = store.read_study_json()
    if record is None:
        raise StoreError(f"no study {study!r} under results root {results!r}")
    data_root = parse_spec(record["spec_yaml"]).run.data_root
    trials = stored_trials(store, results, where)
    done = set() if force else set(_cell_ids(store, "summary"))
    missing = 0
    for row in trials:
        cell = Cell.from_dict(row)
        weights = store.read_weights(cell.cell_id)
        if weights is None:
            missing += 1
            continue
        if cell.cell_id in done:
            continue
        points, summary = cell_landscape(cell, weights, data_root, options, device)
        write(store, "points", cell.cell_id, [{"study": study, "cell_id": cell.cell_id, **p}
                                              for p in points], POINTS)
        write(store, "summary", cell.cell_id, [summary_row(row, cell, summary, device)], SUMMARY)
        if out is not None:
            out.write(f"[{study}] landscape of {cell.cell_id} ({row['loss_label']}, batch "
                      f"{cell.batch_size}): sharpness {summary['sharpness']:.4g}, "
                      f"on MSE {summary['sharpness_mse']:.4g}\n")
    if missing == len(trials) and trials:
        raise StoreError(
            f"study {study!r} stored no weights: submit it with run: {{save_weights: true}} "
            "(trials already stored keep none; delete them or use a new study name)"
        )
    return read_summaries(store)


def summary_row(trial: dict[str, Any], cell: Cell, summary: dict, device: str) -> dict:
    """One flat row: the cell's identity and fields, the options, the figures."""
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    fields = {name: getattr(cell, name) for name in SUMMARY_CELL}
    options = {f"landscape_{k}": v for k, v in summary.items() if k not in FIGURES}
    return {"study": cell.study, "cell_id": cell.cell_id, **fields,
            "loss_label": trial["loss_label"], "model_label": trial["model_label"],
            **options, **{k: float(summary[k]) for k in FIGURES}, "device": device,
            "created_at": now}


def write(store: ResultsStore, table: str, cell_id: str, records: Sequence[dict],
          schema: pa.Schema | None) -> None:
    """landscape/<table>/<cell_id>.parquet, written under a temporary name first."""
    folder = f"{store.path}/landscape/{table}"
    store.fs.create_dir(folder, recursive=True)
    temp = f"{folder}/.{cell_id}.{uuid.uuid4().hex}.tmp"
    pq.write_table(pa.Table.from_pylist(list(records), schema=schema), temp, filesystem=store.fs)
    store.fs.move(temp, f"{folder}/{cell_id}.parquet")


def _cell_ids(store: ResultsStore, table: str) -> list[str]:
    import pyarrow.fs as pafs

    selector = pafs.FileSelector(f"{store.path}/landscape/{table}", allow_not_found=True)
    return [i.base_name.removesuffix(".parquet") for i in store.fs.get_file_info(selector)
            if i.base_name.endswith(".parquet")]


def read_summaries(store: ResultsStore) -> list[dict[str, Any]]:
    """Every stored summary row of the study."""
    files = [f"{store.path}/landscape/summary/{c}.parquet" for c in _cell_ids(store, "summary")]
    if not files:
        return []
    return pq.read_table(files, filesystem=store.fs).to_pylist()


def options_from(args: Any) -> Any:
    """trainables.landscape.Options from the CLI's arguments of the same names."""
    from trainables.landscape import Options

    names = [f.name for f in dataclasses.fields(Options)]
    return Options(**{n: getattr(args, n) for n in names if getattr(args, n, None) is not None})
