"""The results store: results/<study>/{study.json, trials/, epochs/, scores/}.

One Parquet file per cell and table, named by cell id. Every file is written under a
temporary name that does not end in .parquet and then renamed, so readers never see half
a file. The trials file is written last: a cell is stored exactly when its trials file
exists. Paths may be local or any URI pyarrow.fs understands (s3://, gs://, file://).
"""

from __future__ import annotations

import json
import os
import re
import time
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

# A study name is one folder name: no separators, no '..', no leading dot (hidden).
SAFE_STUDY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def resolve(root: str) -> tuple[pafs.FileSystem, str]:
    """A filesystem and a path inside it, for a local path or a URI."""
    if "://" in root:
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(root))


STALE_TEMP_S = 3600.0  # a temp file this old belongs to a writer that was killed


class ResultsStore:
    """The stored results of one study under a results root.

    Args:
        root: the results root, a local path or a URI.
        study: the study name (one folder under the root).
        filesystem: a pyarrow filesystem to use instead of the one ``root`` names (root is
            then a path inside it), e.g. one that injects faults in a test.
    Raises:
        StoreError: for a study name that is not one plain folder name.
    """

    def __init__(self, root: str, study: str, filesystem: pafs.FileSystem | None = None):
        if not SAFE_STUDY.match(study) or ".." in study:
            raise StoreError(
                f"study name {study!r} is not allowed: use letters, digits, '_', '-' or '.', "
                "starting with a letter or digit (it becomes one folder name)"
            )
        if filesystem is None:
            self.fs, base = resolve(root)
        else:
            self.fs, base = filesystem, root
        self.study = study
        self.path = f"{base.rstrip('/')}/{study}"
        self.unreadable: dict[str, str] = {}  # trials files stored_statuses could not read

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
            self.sweep_stale_temps()
            probe = f"{self.path}/.write-probe-{uuid.uuid4().hex}"
            try:
                with self.fs.open_output_stream(probe) as stream:
                    stream.write(b"ok")
            finally:
                _remove_quietly(self.fs, probe)
        except OSError as err:
            raise StoreError(f"results dir {self.path!r} is not writable: {err}") from err

    def sweep_stale_temps(self, older_than_s: float = STALE_TEMP_S) -> list[str]:
        """Removes temp files a killed writer left (``.*.tmp`` under the study, older than
        ``older_than_s``: a live write renames its temp file within seconds); returns
        their paths. They were never results: readers see ``*.parquet`` only."""
        selector = pafs.FileSelector(self.path, recursive=True, allow_not_found=True)
        cutoff = time.time() - older_than_s
        stale = [
            info.path for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File and info.base_name.startswith(".")
            and info.base_name.endswith(".tmp") and info.mtime is not None
            and info.mtime.timestamp() < cutoff
        ]
        for path in stale:
            _remove_quietly(self.fs, path)
        return stale

    def stored_statuses(self) -> dict[str, str]:
        """cell_id -> status of every stored cell (read from its trials row).

        A trials file that cannot be read (truncated, corrupt) is left out, so its cell
        runs again and its files are replaced; its path and the reason land in
        ``self.unreadable``.
        """
        files = self._parquet_files("trials")
        self.unreadable = {}
        if not files:
            return {}
        try:
            tables = [pq.read_table(files, columns=["cell_id", "status"], filesystem=self.fs)]
        except (OSError, ValueError, pa.ArrowException):  # one bad file: read them one by one
            tables = [t for t in (self._read_status(f) for f in files) if t is not None]
        statuses: dict[str, str] = {}
        for table in tables:
            statuses |= zip(table["cell_id"].to_pylist(), table["status"].to_pylist(), strict=True)
        return statuses

    def _read_status(self, path: str) -> pa.Table | None:
        try:
            return pq.read_table(path, columns=["cell_id", "status"], filesystem=self.fs)
        except (OSError, ValueError, pa.ArrowException) as err:
            self.unreadable[path] = str(err).splitlines()[0] if str(err) else type(err).__name__
            return None

    def _parquet_files(self, table: str) -> list[str]:
        selector = pafs.FileSelector(self.table_dir(table), allow_not_found=True)
        return sorted(
            info.path for info in self.fs.get_file_info(selector) if info.path.endswith(".parquet")
        )

    def write_cell(self, cell: Cell, final: Mapping[str, Any], epochs: Iterable[Mapping]) -> None:
        """Stores one finished cell: weights (when the final record carries them), scores
        and epochs first, the trials row last."""
        cell_id = cell.cell_id
        written: list[str] = []
        try:  # all or nothing: a failed write (a full disk) removes what this call wrote
            if final.get("weights"):
                written.append(self.write_weights(cell_id, final["weights"]))
            epoch_rows = [{"study": cell.study, "cell_id": cell_id, **e} for e in epochs]
            epochs_table = pa.Table.from_pylist(epoch_rows, schema=EPOCHS)
            written.append(self._write("epochs", cell_id, epochs_table))
            written.append(self._write("scores", cell_id, scores_table(cell, final)))
            self._write("trials", cell_id, pa.Table.from_pylist([trial_row(cell, final)], TRIALS))
        except BaseException:
            for path in written:
                _remove_quietly(self.fs, path)
            raise

    def _write(self, table: str, cell_id: str, data: pa.Table) -> str:
        """Writes ``<table>/<cell_id>.parquet`` through a temp name; returns its path."""
        final_path = f"{self.table_dir(table)}/{cell_id}.parquet"
        temp_path = f"{self.table_dir(table)}/.{cell_id}.{uuid.uuid4().hex}.tmp"
        try:
            pq.write_table(data, temp_path, filesystem=self.fs)
            self.fs.move(temp_path, final_path)
        except BaseException:
            _remove_quietly(self.fs, temp_path)
            raise
        return final_path

    def write_weights(self, cell_id: str, data: bytes) -> str:
        """weights/<cell_id>.pt: a trial's final state_dict (torch.save bytes); returns
        its path."""
        folder = self.table_dir("weights")
        self.fs.create_dir(folder, recursive=True)
        self._put(f"{folder}/{cell_id}.pt", bytes(data))
        return f"{folder}/{cell_id}.pt"

    def _put(self, path: str, data: bytes) -> None:
        """Writes ``data`` to ``path`` through a temp name in its folder."""
        folder, name = path.rsplit("/", 1)
        temp_path = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
        try:
            with self.fs.open_output_stream(temp_path) as stream:
                stream.write(data)
            self.fs.move(temp_path, path)
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
        self._put(f"{self.path}/study.json", json.dumps(record, indent=2, sort_keys=True).encode())

    def read_study_json(self) -> dict[str, Any] | None:
        try:
            with self.fs.open_input_stream(f"{self.path}/study.json") as stream:
                return json.loads(stream.read())
        except (FileNotFoundError, NotADirectoryError):  # no study stored there
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
