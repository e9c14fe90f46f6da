"""Views with a named field's parameters as typed columns: ``trials_loss``,
``trials_model``, ``trials_optimizer``, ``trials_dataset``.

Each is the ``trials`` view plus one column per parameter of that field's registry
(trainables/param_records.py), at the cell's value or else the entry's default, NULL
where the row's entry has no such parameter; so a cell stored as ``lamp`` (base l2 at its
default) reads ``base = 'l2'``:

    SELECT loss_label, avg(auroc) FROM trials_loss WHERE base = 'l1' GROUP BY 1

A parameter whose name is a trials column too (the dataset's ``seed``) is called
``<field>_<name>`` (``dataset_seed``).
"""

from __future__ import annotations

import duckdb

from study.cell import NAMED_FIELDS
from study.param_columns import columns
from study.schema import TRIALS
from trainables.param_records import PARAMS


def column_name(field: str, param: str) -> str:
    """The view's column for a parameter: its name, or <field>_<name> when trials has it."""
    return f"{field}_{param}" if param in TRIALS.names else param


def literal(value: object) -> str:
    """A default as SQL text (cast to the column's type by the caller)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "'true'" if value else "'false'"
    if isinstance(value, list | tuple):
        return "'[" + ", ".join(str(v) for v in value) + "]'"
    return "'" + str(value).replace("'", "''") + "'"


def param_column(field: str, param: str, sql_type: str) -> str:
    """SQL of one typed column: the JSON value if written, else the entry's default."""
    defaults = " ".join(
        f"WHEN '{name}' THEN {literal(records[param].default)}"
        for name, records in sorted(PARAMS[field].items()) if param in records)
    written = f"json_extract_string({field}_params, '$.\"{param}\"')"
    return (f'CAST(coalesce({written}, CASE {field} {defaults} END) AS {sql_type}) '
            f'AS "{column_name(field, param)}"')


def create_param_views(con: duckdb.DuckDBPyConnection) -> None:
    """``trials_<field>`` for every named field (see the module doc)."""
    for field in NAMED_FIELDS:
        typed = [param_column(field, p, t) for p, t in columns(field).items()]
        con.execute(f"CREATE VIEW trials_{field} AS SELECT trials.*"
                    + "".join(f", {c}" for c in typed) + " FROM trials")
