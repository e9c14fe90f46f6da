"""The results store: results/<study>/{study.json, trials/, epochs/, scores/, weights/,
landscape/}. The one place the project reads or writes stored results (analysis reads
through it too: study.store_files).

One Parquet file per cell and table, named by cell id; a compacted study (study.compaction)
holds part files listed in its manifest as well, a cell's own file winning over a part.
Every file is written under a temporary name that does not end in .parquet
(``.<name>.<uuid>.tmp``) and then renamed, so readers never see half a file. The trials
file is written last. A cell is stored when its trials row, its epochs and its scores
all read (``cell_state``); readers use only files the store wrote, each checked
(study.store_files). Paths may be local or any URI pyarrow.fs understands (s3://, gs://,
file://), and are taken literally (no globbing).
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
from study.schema import EPOCHS, SCORES, TABLES, TRIALS
from study.store_files import (
    READ_ERRORS,
    TableFiles,
    is_temp,
    listed_parts,
    read_manifest,
    read_rows,
    table_files,
)

STALE_TEMP_S = 3600.0  # a temp file this old belongs to a writer that was killed
CELL_TABLES = ("trials", "epochs", "scores")  # a stored cell has a readable row in each

__all__ = ["READ_ERRORS", "ResultsStore", "resolve", "shown"]


def resolve(root: str) -> tuple[pafs.FileSystem, str]:
    """A filesystem and a path inside it, for a local path or a URI (taken literally)."""
    if "://" in root:
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(root))


def shown(root: str, path: str) -> str:
    """``path`` (inside the filesystem ``root`` names) as the user names it: with the
    URI's scheme (s3://bucket/...), without its query (endpoint options)."""
    if "://" not in root:
        return path
    return f"{root.split('://', 1)[0]}://{path}"


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
        self.root = root
        self.study = study
        self.path = f"{base.rstrip('/')}/{study}"
        self.shown = shown(root, self.path) if filesystem is None else self.path
        self.unreadable: dict[str, str] = {}  # files the last read left out: path -> why
        self.damaged: dict[str, str] = {}  # cells the last cell_state found damaged
        self._folders: set[str] = set()  # folders this store made or found (no mkdir each write)

    @property
    def local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def table_dir(self, table: str) -> str:
        return f"{self.path}/{table}"

    def prepare(self) -> None:
        """Creates the folders and proves the root is writable, before any trial runs.

        Raises:
            StoreError: when the results root cannot be written.
        """
        try:
            for table in CELL_TABLES:
                self.fs.create_dir(self.table_dir(table), recursive=True)
                self._folders.add(table)
            self.sweep_stale_temps()
            probe = f"{self.path}/.write-probe-{uuid.uuid4().hex}.tmp"
            try:
                with self.fs.open_output_stream(probe) as stream:
                    stream.write(b"ok")
            finally:
                _remove_quietly(self.fs, probe)
        except OSError as err:
            raise StoreError(f"results dir {self.shown!r} is not writable: {err}") from err

    def sweep_stale_temps(self, older_than_s: float = STALE_TEMP_S) -> list[str]:
        """Removes temp files a killed writer left (``.*.tmp`` under the study, older than
        ``older_than_s``: a live write renames its temp file within seconds); returns
        their paths. They were never results: readers see ``*.parquet`` only."""
        selector = pafs.FileSelector(self.path, recursive=True, allow_not_found=True)
        cutoff = time.time() - older_than_s
        stale = [
            info.path for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File and is_temp(info.base_name)
            and info.mtime is not None and info.mtime.timestamp() < cutoff
        ]
        for path in stale:
            _remove_quietly(self.fs, path)
        return stale

    # -- reading -------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """The compaction manifest (study.compaction); empty groups when never compacted.

        Raises:
            StoreError: when it exists but cannot be read.
        """
        try:
            return read_manifest(self.fs, self.path)
        except (ValueError, OSError) as err:
            raise StoreError(f"cannot read {self.shown}/compacted.json: {err}") from err

    def files(self, table: str, schema: pa.Schema | None = None,
              check: bool = True) -> TableFiles:
        """The checked files of a table (``trials``, ``landscape/summary``, ...)."""
        schema = schema if schema is not None else TABLES[table]
        parts = listed_parts(self.manifest(), table)
        return table_files(self.fs, self.table_dir(table), schema, parts, check)

    def names(self, folder: str) -> list[str]:
        """The cell ids with their own file under ``<study>/<folder>`` (by name only)."""
        return sorted(self.files(folder, pa.schema([]), check=False).cells)

    def read_table(self, table: str, schema: pa.Schema | None = None,
                   columns: list[str] | None = None,
                   where: pads.Expression | None = None) -> pa.Table:
        """Every readable row of a table; what was left out lands in ``self.unreadable``."""
        schema = schema if schema is not None else TABLES[table]
        files = self.files(table, schema)
        table_rows, bad = read_rows(self.fs, files, schema, columns, where)
        self.unreadable = {**files.problems, **bad}
        return table_rows

    def read_trials(self, columns: list[str] | None = None,
                    where: pads.Expression | None = None) -> pa.Table:
        """The stored trials rows (schema TRIALS: columns a file predates read as NULL).

        A trials file that cannot be read (truncated, corrupt, another schema, not named
        as the store names files) is left out, so its cell runs again and its files are
        replaced; its path and the reason land in ``self.unreadable``.
        """
        return self.read_table("trials", TRIALS, columns, where)

    def cell_state(self) -> dict[str, str]:
        """cell_id -> status of every stored cell: one whose trials row, epochs and scores
        all read. Cells with a trials row but a damaged or missing epochs or scores file
        land in ``self.damaged`` (cell_id -> why) and are not stored; every file left out
        lands in ``self.unreadable``."""
        trials = self.files("trials")
        table, bad = read_rows(self.fs, trials, TRIALS, ["cell_id", "status"])
        problems = {**trials.problems, **bad}
        statuses = dict(zip(table["cell_id"].to_pylist(), table["status"].to_pylist(),
                            strict=True))
        listing = {"trials": trials} | {name: self.files(name) for name in CELL_TABLES[1:]}
        for files in listing.values():
            problems |= files.problems
        in_parts = self._intact_part_cells(listing)
        self.damaged = {}
        for cell_id in statuses:
            for name in CELL_TABLES[1:]:
                if cell_id not in listing[name].cells and cell_id not in in_parts:
                    self.damaged[cell_id] = f"its {name} file is missing or unreadable"
                    break
        self.unreadable = problems
        return {c: s for c, s in statuses.items() if c not in self.damaged}

    def _intact_part_cells(self, listing: dict[str, TableFiles]) -> set[str]:
        """Cells of the compaction groups whose three parts all passed their checks
        (study.compaction writes a group's parts together, over the same cells)."""
        good = {name: {p.rsplit("/", 1)[-1] for p in files.parts}
                for name, files in listing.items()}
        paths = [f"{self.table_dir('trials')}/{g['trials']}"
                 for g in self.manifest().get("groups", [])
                 if all(g.get(name) in good[name] for name in CELL_TABLES)]
        if not paths:
            return set()
        table, _ = read_rows(self.fs, TableFiles(parts=paths), TRIALS, ["cell_id"])
        return set(table["cell_id"].to_pylist())

    def stored_statuses(self) -> dict[str, str]:
        """cell_id -> status of every stored cell (cell_state: damaged cells are not)."""
        return self.cell_state()

    def read_folder(self, folder: str, schema: pa.Schema) -> list[dict[str, Any]]:
        """Every readable row of a table folder (e.g. ``landscape/summary``)."""
        return self.read_table(folder, schema).to_pylist()

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

    def read_bytes(self, name: str) -> bytes | None:
        """``<study>/<name>``'s bytes, None when absent."""
        try:
            with self.fs.open_input_stream(f"{self.path}/{name}") as stream:
                return stream.read()
        except (FileNotFoundError, NotADirectoryError):
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


def study_folders(results: str, filesystem: pafs.FileSystem | None = None) -> list[str]:
    """The study folders under a results root (those named as a study may be).

    Raises:
        FileNotFoundError: when the root does not exist or is a file.
    """
    fs, root = (filesystem, results) if filesystem is not None else resolve(results)
    kind = fs.get_file_info(root).type
    if kind == pafs.FileType.NotFound:
        raise FileNotFoundError(f"results root {results!r} does not exist")
    if kind == pafs.FileType.File:
        raise FileNotFoundError(f"results root {results!r} is a file, not a results folder")
    infos = fs.get_file_info(pafs.FileSelector(root))
    return sorted(i.base_name for i in infos
                  if i.type == pafs.FileType.Directory and not study_name_problem(i.base_name))
