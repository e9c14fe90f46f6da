"""DuckDB views ``trials``, ``epochs`` and ``scores`` over one or many stored studies."""

from __future__ import annotations

import os
from collections.abc import Sequence

import duckdb
import pyarrow as pa

from study.schema import TABLES
from study.store import resolve


def study_names(results: str) -> list[str]:
    """Every study folder under a local results root."""
    _, root = resolve(results)
    if not os.path.isdir(root):
        return []
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))


def connect(results: str = "results", studies: Sequence[str] | None = None):
    """An in-memory DuckDB connection with the three views over the chosen studies.

    Args:
        results: the results root.
        studies: study names to include; None or empty means every study found.
    Raises:
        FileNotFoundError: when a named study is not in the results root.
    """
    _, root = resolve(results)
    available = study_names(results)
    chosen = list(studies) if studies else available
    missing = [s for s in chosen if s not in available]
    if missing:
        raise FileNotFoundError(
            f"study {missing[0]!r} not found in {root}; studies there: {available or 'none'}"
        )
    con = duckdb.connect(":memory:")
    for table, schema in TABLES.items():
        globs = [
            os.path.join(root, s, table, "*.parquet")
            for s in chosen
            if any(f.endswith(".parquet") for f in _listdir(os.path.join(root, s, table)))
        ]
        if globs:
            con.execute(
                f"CREATE VIEW {table} AS SELECT * FROM read_parquet({_sql_list(globs)}, "
                "union_by_name = true)"
            )
        else:
            con.register(f"{table}_empty", pa.Table.from_pylist([], schema=schema))
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM {table}_empty")
    return con


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _sql_list(items: Sequence[str]) -> str:
    return "[" + ", ".join("'" + item.replace("'", "''") + "'" for item in items) + "]"
