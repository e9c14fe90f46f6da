"""The results store: results/<study>/{study.json, trials/, epochs/, scores/}.

One Parquet file per cell and table, named by cell id. Every file is written under a
temporary name that does not end in .parquet and then renamed, so readers never see half
a file. The trials file is written last: a cell is stored exactly when its trials file
exists. Paths may be local or any URI pyarrow.fs understands (s3://, gs://, file://).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from study.cell import Cell
from study.errors import StoreError
from study.schema import EPOCHS, SCORES, TRIALS


def resolve(root: str) -> tuple[pafs.FileSystem, str]:
    """A filesystem and a path inside it, for a local path or a URI."""
    if "://" in root:
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(root))


class ResultsStore:
    """The stored results of one study under a results root."""

    def __init__(self, root: str, study: str):
        self.fs, base = resolve(root)
        self.study = study
        self.path = f"{base.rstrip('/')}/{study}"

    def table_dir(self, table: str) -> str:
        return f"{self.path}/{table}"

    def prepare(self) -> None:
        """Creates the folders and proves the root is writable, before any trial runs.

        Raises:
            StoreError: when the results root cannot be written.
        """
        try:
            for table in ("trials", "epochs", "scores"):
                self.fs.create_dir(self.table_dir(table), recursive=True)
            probe = f"{self.path}/.write-probe-{uuid.uuid4().hex}"
            with self.fs.open_output_stream(probe) as stream:
                stream.write(b"ok")
            self.fs.delete_file(probe)
        except OSError as err:
            raise StoreError(f"results dir {self.path!r} is not writable: {err}") from err

    def stored_statuses(self) -> dict[str, str]:
        """cell_id -> status of every stored cell (read from file names and rows)."""
        files = self._parquet_files("trials")
        if not files:
            return {}
        table = pq.read_table(files, columns=["cell_id", "status"], filesystem=self.fs)
        return dict(zip(table["cell_id"].to_pylist(), table["status"].to_pylist(), strict=True))

    def _parquet_files(self, table: str) -> list[str]:
        selector = pafs.FileSelector(self.table_dir(table), allow_not_found=True)
        return sorted(
            info.path for info in self.fs.get_file_info(selector) if info.path.endswith(".parquet")
        )

    def write_cell(self, cell: Cell, final: Mapping[str, Any], epochs: Iterable[Mapping]) -> None:
        """Stores one finished cell: weights (when the final record carries them), scores
        and epochs first, the trials row last."""
        cell_id = cell.cell_id
        if final.get("weights"):
            self.write_weights(cell_id, final["weights"])
        epoch_rows = [{"study": cell.study, "cell_id": cell_id, **e} for e in epochs]
        self._write("epochs", cell_id, pa.Table.from_pylist(epoch_rows, schema=EPOCHS))
        self._write("scores", cell_id, scores_table(cell, final))
        self._write("trials", cell_id, pa.Table.from_pylist([trial_row(cell, final)], TRIALS))

    def _write(self, table: str, cell_id: str, data: pa.Table) -> None:
        final_path = f"{self.table_dir(table)}/{cell_id}.parquet"
        temp_path = f"{self.table_dir(table)}/.{cell_id}.{uuid.uuid4().hex}.tmp"
        try:
            pq.write_table(data, temp_path, filesystem=self.fs)
            self.fs.move(temp_path, final_path)
        except BaseException:
            _remove_quietly(self.fs, temp_path)
            raise

    def write_weights(self, cell_id: str, data: bytes) -> None:
        """weights/<cell_id>.pt: a trial's final state_dict (torch.save bytes)."""
        folder = self.table_dir("weights")
        self.fs.create_dir(folder, recursive=True)
        temp_path = f"{folder}/.{cell_id}.{uuid.uuid4().hex}.tmp"
        try:
            with self.fs.open_output_stream(temp_path) as stream:
                stream.write(bytes(data))
            self.fs.move(temp_path, f"{folder}/{cell_id}.pt")
        except BaseException:
            _remove_quietly(self.fs, temp_path)
            raise

    def read_weights(self, cell_id: str) -> bytes | None:
        """A trial's stored weights, or None when the study did not save them."""
        try:
            with self.fs.open_input_stream(f"{self.table_dir('weights')}/{cell_id}.pt") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write_study_json(self, record: Mapping[str, Any]) -> None:
        data = json.dumps(record, indent=2, sort_keys=True).encode()
        temp_path = f"{self.path}/.study.{uuid.uuid4().hex}.tmp"
        with self.fs.open_output_stream(temp_path) as stream:
            stream.write(data)
        self.fs.move(temp_path, f"{self.path}/study.json")

    def read_study_json(self) -> dict[str, Any] | None:
        try:
            with self.fs.open_input_stream(f"{self.path}/study.json") as stream:
                return json.loads(stream.read())
        except FileNotFoundError:
            return None


def trial_row(cell: Cell, final: Mapping[str, Any]) -> dict[str, Any]:
    """The flat trials row: cell fields and metrics side by side (STYLE 6)."""
    row = {name: final.get(name) for name in TRIALS.names}
    row |= cell.to_dict()
    row |= {
        "cell_id": cell.cell_id,
        "loss_label": cell.label("loss"),
        "model_label": cell.label("model"),
        "error": final.get("error") or "",
    }
    return row


def scores_table(cell: Cell, final: Mapping[str, Any]) -> pa.Table:
    scores = np.asarray(final.get("scores", ()), dtype=np.float64)
    labels = np.asarray(final.get("labels", ()), dtype=np.int64)
    n = len(scores)
    return pa.Table.from_pydict(
        {
            "study": [cell.study] * n,
            "cell_id": [cell.cell_id] * n,
            "index": np.arange(n, dtype=np.int64),
            "label": labels,
            "score": scores,
        },
        schema=SCORES,
    )


def _remove_quietly(fs: pafs.FileSystem, path: str) -> None:
    try:
        fs.delete_file(path)
    except OSError:
        pass
