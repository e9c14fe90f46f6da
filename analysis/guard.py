"""Read-only SQL for ``adstudy sql``, and leaving unreadable Parquet files out of the views.

A read-only connection (``lock``) may read only the study folders its views cover: DuckDB's
``enable_external_access = false`` with those folders in ``allowed_directories`` refuses
every other file (COPY TO elsewhere, ATTACH, INSTALL/LOAD, read_csv of other files), and
``lock_configuration`` keeps SQL from turning that off. Statements that write or attach
files are refused by type before they run (``check_statements``), which also covers
writes into the study folders the views need to read.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

# Statement types that write, attach or load files.
WRITES = {
    duckdb.StatementType.COPY: "COPY",
    duckdb.StatementType.COPY_DATABASE: "COPY FROM DATABASE",
    duckdb.StatementType.ATTACH: "ATTACH",
    duckdb.StatementType.DETACH: "DETACH",
    duckdb.StatementType.EXPORT: "EXPORT DATABASE",
    duckdb.StatementType.LOAD: "INSTALL/LOAD",
    duckdb.StatementType.EXTENSION: "extension",
}
HINT = "adstudy sql is read-only; pass --allow-files to let SQL read and write other files"


def lock(con: duckdb.DuckDBPyConnection, folders: Sequence[str]) -> None:
    """Makes ``con`` read-only: files only under ``folders`` (local paths), for reading."""
    if folders:
        listed = ", ".join("'" + f.rstrip("/").replace("'", "''") + "/'" for f in folders)
        con.execute(f"SET allowed_directories = [{listed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def is_locked(con: duckdb.DuckDBPyConnection) -> bool:
    (value,) = con.execute("SELECT current_setting('enable_external_access')").fetchone()
    return not value


def check_statements(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuses SQL that would write, attach or load files, on a locked connection.

    Raises:
        ValueError: naming the statement kind and how to allow it.
    """
    if not is_locked(con):
        return
    for statement in con.extract_statements(sql):
        if statement.type in WRITES:
            raise ValueError(
                f"{WRITES[statement.type]} statements are not allowed: {HINT}"
            )


def readable(
    fs: pafs.FileSystem, paths: Iterable[str], warn: Callable[[str], None]
) -> list[str]:
    """The paths whose Parquet footer reads; each other one is named through ``warn``."""
    good = []
    for path in paths:
        try:
            pq.read_metadata(path, filesystem=fs)
        except (OSError, ValueError, pa.ArrowException) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            warn(f"cannot read {path} ({reason}); the views leave it out")
        else:
            good.append(path)
    return good


def to_stderr(message: str) -> None:
    sys.stderr.write(f"adstudy: warning: {message}\n")
