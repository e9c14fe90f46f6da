"""A named value's parameters in full, as typed columns: every parameter its registry
entry has (trainables/param_records.py), at the value the cell set or else its default.

A cell keeps only the parameters written away from their default (``loss_params`` '{}'
for ``{name: lamp, base: l2}``); the views (analysis.views: ``trials_loss`` ...) and the
exports (study.export) show them all, so ``base = 'l2'`` finds the default lamp too.
Pure functions: no torch, no ray.
"""

from __future__ import annotations

import json
from typing import Any

from trainables.param_records import PARAMS

# A parameter's kind (trainables.params.Param.kind) -> the SQL type of its column.
SQL_TYPES = {"float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN", "str": "VARCHAR",
             "ints": "BIGINT[]"}


def full_params(field: str, name: str, params_json: str | None) -> dict[str, Any]:
    """Every parameter of ``name`` in ``field``'s registry: the cell's value, else the
    default (a parameter without a record is kept as written)."""
    written = json.loads(params_json or "{}")
    records = PARAMS.get(field, {}).get(name, {})
    values = {key: record.default for key, record in records.items()}
    values.update(written)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(values.items())}


def columns(field: str) -> dict[str, str]:
    """param -> SQL type, over every entry of ``field``'s registry (a name shared by two
    entries has one kind in all of them; tests/test_interop_views.py checks it)."""
    found: dict[str, str] = {}
    for records in PARAMS.get(field, {}).values():
        for key, record in records.items():
            found.setdefault(key, SQL_TYPES[record.kind])
    return dict(sorted(found.items()))


def flat(field: str, name: str, params_json: str | None) -> dict[str, Any]:
    """``{"loss": "lamp", "loss.base": "l2", ...}``: a named value and its full
    parameters as flat scalars (lists as JSON text), e.g. for hyperparameter tables."""
    out: dict[str, Any] = {field: name}
    for key, value in full_params(field, name, params_json).items():
        out[f"{field}.{key}"] = json.dumps(value) if isinstance(value, list | dict) else value
    return out
