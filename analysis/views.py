"""DuckDB views ``trials``, ``epochs`` and ``scores`` over one or many stored studies, and
``landscape`` / ``landscape_points`` over their loss landscapes (`adstudy landscape`).

Every view reads through the store (study.store, study.store_files): only files the store
wrote, each checked (footer, schema, its own cell's rows), registered in DuckDB as pyarrow
datasets with the explicit schema of ``study.schema``. Anything else in a table folder is
named once through ``warn`` and left out. DuckDB itself opens no file, so a read-only
connection may read none (analysis.guard), and a results path is never globbed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs

from analysis.guard import HINT, check_statements, lock, to_stderr
from analysis.param_views import create_param_views
from study.cell import CELL_DEFAULTS, CELL_FIELDS, NAMED_FIELDS
from study.errors import StoreError
from study.schema import LANDSCAPE_VIEWS, TABLES
from study.store import ResultsStore
from study.store import study_folders as study_names
from study.store_files import TableFiles, dataset


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[dict]:
    """A query's result as a list of dicts (column name -> value).

    Raises:
        ValueError: on a read-only connection (connect(read_only=True)), for SQL that
            writes, attaches or loads files (analysis.guard).
    """
    check_statements(con, sql)
    try:
        cursor = con.execute(sql, list(params))
    except duckdb.PermissionException as err:  # a file outside the views' folders
        raise ValueError(f"{err}\n({HINT})") from err
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def connect(
    results: str = "results", studies: Sequence[str] | None = None, read_only: bool = False,
    warn: Callable[[str], None] = to_stderr, filesystem: pafs.FileSystem | None = None,
):
    """An in-memory DuckDB connection with the views over the chosen studies.

    A file the store did not write, or one that fails its check (a damaged footer,
    another schema), is left out of the views and named through ``warn``.

    Args:
        results: the results root, a local path or a URI.
        studies: study names to include; None or empty means every study found.
        read_only: SQL may read no file and never write, attach or load files
            (analysis.guard; `adstudy sql` without --allow-files).
        warn: called with a message per file left out.
        filesystem: a pyarrow filesystem ``results`` is a path in (default: the one
            ``results`` names).
    Returns:
        A DuckDB connection with views ``trials``, ``epochs``, ``scores``, ``landscape``
        (a summary row per measured trial) and ``landscape_points``, ``trials_loss``,
        ``trials_model``, ``trials_optimizer`` and ``trials_dataset`` (trials with that
        field's parameters as typed columns, analysis.param_views), and a table
        ``studies`` (study, spec_yaml, created_at: each study's study.json, NULL if none).
    Raises:
        FileNotFoundError: when the root or a named study is not there.
    """
    available = study_names(results, filesystem)
    chosen = list(studies) if studies else available
    missing = [s for s in chosen if s not in available]
    if missing:
        raise FileNotFoundError(
            f"study {missing[0]!r} not found in {results}; studies there: {available or 'none'}"
        )
    con = duckdb.connect(":memory:")
    stores = [ResultsStore(results, s, filesystem) for s in chosen]
    layout = {table: (table, schema) for table, schema in TABLES.items()} | LANDSCAPE_VIEWS
    for table, (folder, schema) in layout.items():
        _data_view(con, stores, table, folder, schema, warn)
        con.execute(complete_view(con, table, schema))
    create_param_views(con)
    _studies_table(con, stores)
    if read_only:
        lock(con)
    return con


def materialize(con: duckdb.DuckDBPyConnection,
                tables: Sequence[str] = ("trials", "epochs")) -> duckdb.DuckDBPyConnection:
    """Reads each view's files once into an in-memory table of the same name (the view
    stays as ``<table>_files``): a report runs dozens of queries, and each would otherwise
    read every Parquet file of a study again. Returns ``con``."""
    for table in tables:
        con.execute(f"ALTER VIEW {table} RENAME TO {table}_files")
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM {table}_files")
    return con


def _studies_table(con: duckdb.DuckDBPyConnection, stores: Sequence[ResultsStore]) -> None:
    """``studies``: the spec each study was submitted with (its analysis settings too)."""
    found = []
    for store in stores:
        try:
            record = store.read_study_json() or {}
        except (StoreError, OSError, ValueError):  # no readable study.json: no spec
            record = {}
        found.append({"study": store.study, "spec_yaml": record.get("spec_yaml"),
                      "created_at": record.get("created_at")})
    schema = pa.schema([(name, pa.string()) for name in ("study", "spec_yaml", "created_at")])
    con.register("studies_data", pa.Table.from_pylist(found, schema=schema))
    con.execute("CREATE TABLE studies AS SELECT * FROM studies_data")
    con.unregister("studies_data")


def _data_view(con: duckdb.DuckDBPyConnection, stores: Sequence[ResultsStore], table: str,
               folder: str, schema: pa.Schema, warn: Callable[[str], None]) -> None:
    """``<table>_data``: the checked files of ``table`` in every study; a cell's own file
    wins over a compacted part's rows of that cell (study.store_files.read_rows)."""
    listing = TableFiles()
    for store in stores:
        files = store.files(folder, schema)
        listing.cells |= files.cells
        listing.parts += files.parts
        for path, why in files.problems.items():
            warn(f"cannot read {store.shown + path[len(store.path):]} ({why}); the views "
                 "leave it out")
    fs = stores[0].fs if stores else pafs.LocalFileSystem()
    con.register(f"{table}_cells", dataset(fs, list(listing.cells.values()), schema))
    sql = f"SELECT * FROM {table}_cells"
    if listing.parts:
        con.register(f"{table}_parts", dataset(fs, listing.parts, schema))
        con.register(f"{table}_own", pa.table({"cell_id": list(listing.cells)},
                                               schema=pa.schema([("cell_id", pa.string())])))
        sql += (f" UNION ALL SELECT * FROM {table}_parts WHERE cell_id NOT IN "
                f"(SELECT cell_id FROM {table}_own)")
    con.execute(f"CREATE VIEW {table}_data AS {sql}")


_DUCK_TYPES = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE"}


def complete_view(con: duckdb.DuckDBPyConnection, table: str, schema: pa.Schema) -> str:
    """SQL of the view ``table`` over ``<table>_data``, for files written before a field
    existed: a missing cell field reads as its default (the value those trials ran with,
    so old and new trials still pair), any other missing column as NULL.
    """
    present = {row[0] for row in con.execute(f"DESCRIBE {table}_data").fetchall()}
    replace, added = [], []
    for field in schema:
        default = CELL_DEFAULTS.get(field.name) if table == "trials" else None
        value = "NULL" if default is None else _literal(default)
        if field.name not in present:
            added.append(f'CAST({value} AS {_DUCK_TYPES.get(field.type, "VARCHAR")}) '
                         f'AS "{field.name}"')
        elif default is not None:
            replace.append(f'coalesce("{field.name}", {value}) AS "{field.name}"')
    star = f"* REPLACE ({', '.join(replace)})" if replace else "*"
    return f"CREATE VIEW {table} AS SELECT {', '.join([star, *added])} FROM {table}_data"


def _literal(value: object) -> str:
    return "'" + value.replace("'", "''") + "'" if isinstance(value, str) else repr(value)


def label_column(axis: str) -> str:
    """The SQL expression naming an axis value readably, e.g. ``lamp(base=l1)`` for loss.

    Raises:
        ValueError: when ``axis`` is not a cell field.
    """
    if axis not in CELL_FIELDS or axis.endswith("_params"):
        choices = sorted(f for f in CELL_FIELDS if not f.endswith("_params"))
        raise ValueError(f"unknown axis {axis!r}; choose from {choices}")
    if axis in ("loss", "model"):
        return f"{axis}_label"
    if axis in NAMED_FIELDS:
        return f"CASE WHEN {axis}_params = '{{}}' THEN {axis} ELSE {axis} || {axis}_params END"
    return f"CAST({axis} AS VARCHAR)"


def pairing_key(*axes: str) -> list[str]:
    """Cell fields two trials must share to be a pair that differs only in ``axes``."""
    drop = {a for axis in axes for a in (axis, f"{axis}_params")}
    return [f for f in CELL_FIELDS if f not in drop]


def unit_sql(unit: Sequence[str]) -> str:
    """SQL labelling a trial's unit of inference by its fields but the dataset (claims and
    summaries are taken per dataset), e.g. the normal class."""
    shown = [f for f in unit if f != "dataset"] or list(unit)
    return "concat_ws(' / ', " + ", ".join(f"CAST({f} AS VARCHAR)" for f in shown) + ")"


def config_sql(axis: str, unit: Sequence[str]) -> str:
    """SQL labelling a trial's configuration: every cell field but the compared axis, the
    seed, the unit's fields, the study and the dataset."""
    drop = {*unit, "study", "dataset"}
    fields = [f for f in pairing_key(axis, "seed") if f not in drop]
    return "concat_ws('|', " + ", ".join(f"CAST({f} AS VARCHAR)" for f in fields) + ")"


def check_columns(columns: Sequence[str], table: str = "trials") -> list[str]:
    """Checks grouping columns against a table's schema.

    Raises:
        ValueError: naming the unknown column and the choices.
    """
    names = TABLES[table].names
    for column in columns:
        if column not in names:
            raise ValueError(f"unknown column {column!r} in {table}; choose from {sorted(names)}")
    return list(columns)
