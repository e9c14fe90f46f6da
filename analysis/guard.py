"""Read-only SQL for ``adstudy sql`` and every user-supplied SQL fragment.

The views read through pyarrow (analysis.views), so a read-only connection (``lock``) needs
no file at all: DuckDB's ``enable_external_access = false`` refuses every file (COPY TO,
ATTACH, INSTALL/LOAD, read_csv, read_text, ...), its temp directory is switched off first
(DuckDB otherwise allows its default ``.tmp`` under the working directory), and
``lock_configuration`` keeps SQL from turning that off. Statements that write or attach
files are refused by type before they run (``check_statements``). A condition a user
passes to a command (``adstudy landscape --where``) must be one expression
(``check_condition``).
"""

from __future__ import annotations

import sys

import duckdb

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


def lock(con: duckdb.DuckDBPyConnection) -> None:
    """Makes ``con`` read-only: no file may be read or written from SQL."""
    con.execute("SET temp_directory = ''")
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


def check_condition(con: duckdb.DuckDBPyConnection, condition: str, table: str) -> str:
    """``condition`` as one SQL expression over ``table`` (a --where), checked on ``con``.

    Raises:
        ValueError: when it is not exactly one expression (a closing parenthesis and a
            second statement, a comment that swallows the rest), naming it.
    """
    sql = f"SELECT * FROM {table} WHERE ({condition})"
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as err:
        raise ValueError(f"--where {condition!r} is not an SQL condition: {err}") from err
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT or (
        "--" in condition or "/*" in condition or ";" in condition
    ):
        raise ValueError(f"--where {condition!r} must be one condition over the {table} "
                         "columns, e.g. \"normal_class = 0 AND lr < 0.01\"")
    return f"({condition})"


_warned: set[str] = set()


def to_stderr(message: str) -> None:
    """A warning on stderr, each message once per process (a report connects twice)."""
    if message not in _warned:
        _warned.add(message)
        sys.stderr.write(f"adstudy: warning: {message}\n")
