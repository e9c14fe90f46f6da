"""`adstudy landscape`: loss landscapes of a study's stored trials, kept in its store.

For every chosen complete trial whose weights the study saved (``run: {save_weights:
true}``), trainables.landscape measures the loss around the weights; the points land in
``results/<study>/landscape/points/<cell_id>.parquet`` and one summary row (the cell's
fields, the options and the sharpness figures) in ``.../landscape/summary/<cell_id>.parquet``
(schemas: study.schema), written through the store like the rest of it. A trial that
already has a summary is skipped unless ``force``. Which trials: rows the caller selected
(the CLI runs the SQL of ``--where`` through analysis.views); no SQL here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TextIO

import pyarrow as pa

from study.cell import Cell
from study.data_mirror import local_data_root
from study.errors import StoreError
from study.schema import (
    LANDSCAPE_CELL,
    LANDSCAPE_FIGURES,
    LANDSCAPE_POINTS,
    LANDSCAPE_SUMMARY,
)
from study.spec import parse_spec
from study.store import ResultsStore
from trainables.landscape import Options, cell_landscape
from trainables.provenance import now


def data_root_of(store: ResultsStore) -> str:
    """The data root the stored study trained on (its spec's run.data_root; a URI is
    mirrored to this machine first, as a trial does: study.data_mirror).

    Raises:
        StoreError: when no study is stored there.
    """
    record = store.read_study_json()
    if record is None:
        root = store.path[: -len(store.study) - 1]
        raise StoreError(f"no study {store.study!r} under results root {root!r}")
    return local_data_root(parse_spec(record["spec_yaml"]).run.data_root)


def run_landscapes(
    store: ResultsStore, trials: Sequence[dict[str, Any]], options: Options, data_root: str,
    device: str = "cpu", force: bool = False, out: TextIO | None = None,
) -> list[dict[str, Any]]:
    """Measures and stores the landscape of each of ``trials`` (trials rows: every cell
    field, loss_label, model_label); returns every summary row of the study.

    Raises:
        StoreError: when the study saved no weights.
    """
    done = set() if force else set(store.names("landscape/summary"))
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
        write(store, "points", cell.cell_id, [{"study": cell.study, "cell_id": cell.cell_id, **p}
                                              for p in points], LANDSCAPE_POINTS)
        write(store, "summary", cell.cell_id, [summary_row(row, cell, summary, device)],
              LANDSCAPE_SUMMARY)
        if out is not None:
            out.write(f"[{store.study}] landscape of {cell.cell_id} ({row['loss_label']}, batch "
                      f"{cell.batch_size}): sharpness {summary['sharpness']:.4g}, "
                      f"on MSE {summary['sharpness_mse']:.4g}\n")
    if missing == len(trials) and trials:
        raise StoreError(
            f"study {store.study!r} stored no weights: submit it with run: "
            "{save_weights: true} (trials already stored keep none; delete them or use a new "
            "study name)"
        )
    return store.read_folder("landscape/summary", LANDSCAPE_SUMMARY)


def summary_row(trial: dict[str, Any], cell: Cell, summary: dict, device: str) -> dict:
    """One flat row: the cell's identity and fields, the options, the figures."""
    fields = {name: getattr(cell, name) for name in LANDSCAPE_CELL}
    options = {f"landscape_{k}": v for k, v in summary.items() if k not in LANDSCAPE_FIGURES}
    return {"study": cell.study, "cell_id": cell.cell_id, **fields,
            "loss_label": trial["loss_label"], "model_label": trial["model_label"],
            **options, **{k: float(summary[k]) for k in LANDSCAPE_FIGURES}, "device": device,
            "created_at": now()}


def write(store: ResultsStore, table: str, cell_id: str, records: Sequence[dict],
          schema: pa.Schema) -> None:
    """landscape/<table>/<cell_id>.parquet, through the store (temp name, then rename)."""
    store.write_parquet(f"landscape/{table}", cell_id,
                        pa.Table.from_pylist(list(records), schema=schema))


def options_from(args: Any) -> Options:
    """trainables.landscape.Options from the CLI's arguments of the same names."""
    names = [f.name for f in dataclasses.fields(Options)]
    return Options(**{n: getattr(args, n) for n in names if getattr(args, n, None) is not None})
