"""The results store: results/<study>/{study.json, trials/, epochs/, scores/, weights/,
landscape/}. The one place the study layer writes or lists stored files.

One Parquet file per cell and table, named by cell id. Every file is written under a
temporary name that does not end in .parquet (``.<name>.<uuid>.tmp``) and then renamed,
so readers never see half a file. The trials file is written last: a cell is stored
exactly when its trials file exists. Paths may be local or any URI pyarrow.fs
understands (s3://, gs://, file://).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from study.cell import Cell, study_name_problem
from study.errors import StoreError
from study.schema import EPOCHS, SCORES, TRIALS

STALE_TEMP_S = 3600.0  # a temp file this old belongs to a writer that was killed
READ_ERRORS = (OSError, ValueError, pa.ArrowException)  # a truncated or corrupt file


def resolve(root: str) -> tuple[pafs.FileSystem, str]:
    """A filesystem and a path inside it, for a local path or a URI."""
    if "://" in root:
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(root))


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
        problem = study_name_problem(study)
        if problem:
            raise StoreError(problem)
        if filesystem is None:
            self.fs, base = resolve(root)
        else:
            self.fs, base = filesystem, root
        self.study = study
        self.path = f"{base.rstrip('/')}/{study}"
        self.unreadable: dict[str, str] = {}  # trials files read_trials could not read
        self._folders: set[str] = set()  # folders this store made or found (no mkdir each write)

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
                self._folders.add(table)
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

    # -- reading -------------------------------------------------------------------------

    def names(self, folder: str) -> list[str]:
        """The ``<name>.parquet`` files under ``<study>/<folder>``, as sorted names."""
        selector = pafs.FileSelector(self.table_dir(folder), allow_not_found=True)
        return sorted(i.base_name.removesuffix(".parquet") for i in self.fs.get_file_info(selector)
                      if i.base_name.endswith(".parquet"))

    def read_trials(self, columns: list[str] | None = None,
                    where: pads.Expression | None = None) -> pa.Table:
        """The stored trials rows (schema TRIALS: columns a file predates read as NULL).

        A trials file that cannot be read (truncated, corrupt) is left out, so its cell
        runs again and its files are replaced; its path and the reason land in
        ``self.unreadable``.
        """
        files = [f"{self.table_dir('trials')}/{n}.parquet" for n in self.names("trials")]
        self.unreadable = {}

        def read(paths: list[str]) -> pa.Table:
            data = pads.dataset(paths, schema=TRIALS, filesystem=self.fs, format="parquet")
            return data.to_table(columns=columns, filter=where)

        try:
            return read(files)
        except READ_ERRORS:  # one bad file: read them one by one
            tables = []
            for path in files:
                try:
                    tables.append(read([path]))
                except READ_ERRORS as err:
                    self.unreadable[path] = str(err).splitlines()[0] if str(err) else \
                        type(err).__name__
            return pa.concat_tables(tables) if tables else read([])

    def stored_statuses(self) -> dict[str, str]:
        """cell_id -> status of every stored cell (read from its trials row; see
        read_trials for files that cannot be read)."""
        table = self.read_trials(["cell_id", "status"])
        return dict(zip(table["cell_id"].to_pylist(), table["status"].to_pylist(), strict=True))

    def read_folder(self, folder: str) -> list[dict[str, Any]]:
        """Every row of every Parquet file under ``<study>/<folder>``."""
        files = [f"{self.table_dir(folder)}/{n}.parquet" for n in self.names(folder)]
        return pq.read_table(files, filesystem=self.fs).to_pylist() if files else []

    def read_weights(self, cell_id: str) -> bytes | None:
        """A trial's stored weights, or None when the study did not save them."""
        try:
            with self.fs.open_input_stream(f"{self.table_dir('weights')}/{cell_id}.pt") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def read_study_json(self) -> dict[str, Any] | None:
        try:
            with self.fs.open_input_stream(f"{self.path}/study.json") as stream:
                return json.loads(stream.read())
        except (FileNotFoundError, NotADirectoryError):  # no study stored there
            return None

    # -- writing -------------------------------------------------------------------------

    def write_cell(self, cell: Cell, final: Mapping[str, Any], epochs: Iterable[Mapping]) -> None:
        """Stores one finished cell: weights (when the final record carries them), scores
        and epochs first, the trials row last. All or nothing: a failed write (a full
        disk) removes what this call wrote."""
        cell_id = cell.cell_id
        written: list[str] = []
        try:
            if final.get("weights"):
                written.append(self.write_bytes("weights", f"{cell_id}.pt", final["weights"]))
            epoch_rows = [{"study": cell.study, "cell_id": cell_id, **e} for e in epochs]
            written.append(self.write_parquet(
                "epochs", cell_id, pa.Table.from_pylist(epoch_rows, schema=EPOCHS)))
            written.append(self.write_parquet("scores", cell_id, scores_table(cell, final)))
            self.write_parquet("trials", cell_id,
                               pa.Table.from_pylist([trial_row(cell, final)], TRIALS))
        except BaseException:
            for path in written:
                _remove_quietly(self.fs, path)
            raise

    def write_parquet(self, folder: str, name: str, data: pa.Table) -> str:
        """``<study>/<folder>/<name>.parquet``; returns its path."""
        return self._atomic(folder, f"{name}.parquet",
                            lambda temp: pq.write_table(data, temp, filesystem=self.fs))

    def write_bytes(self, folder: str, name: str, data: bytes) -> str:
        """``<study>/<folder>/<name>`` holding ``data``; returns its path."""
        def write(temp: str) -> None:
            with self.fs.open_output_stream(temp) as stream:
                stream.write(bytes(data))

        return self._atomic(folder, name, write)

    def write_study_json(self, record: Mapping[str, Any]) -> None:
        self.write_bytes("", "study.json", json.dumps(record, indent=2, sort_keys=True).encode())

    def _atomic(self, folder: str, name: str, write: Callable[[str], None]) -> str:
        """Writes a file through a temp name in its folder (created when missing), then
        renames it: a reader sees the whole file or none."""
        where = self.table_dir(folder) if folder else self.path
        if folder not in self._folders:
            self.fs.create_dir(where, recursive=True)
            self._folders.add(folder)
        temp, path = f"{where}/.{name}.{uuid.uuid4().hex}.tmp", f"{where}/{name}"
        try:
            write(temp)
            self.fs.move(temp, path)
        except BaseException:
            _remove_quietly(self.fs, temp)
            raise
        return path


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
