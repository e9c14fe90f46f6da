"""Stored cells whose parameters are not in normal form: refused, not run twice.

A study file's parameters are normalised before the cell id (study/spec_values.py,
trainables/param_records.py): one written at its default is left out, so ``{name: lamp,
base: l2}`` is the cell ``lamp``. Every cell stored since holds its parameters in that
form. A stored row that does not was stored before: its id was computed from the
parameters as written, and the same configuration submitted now has another id. Run
again, it would land beside the old row under a second id (two rows for one cell, with
two labels), so a submission into such a study is refused, naming the values and what to
do. The stored rows stay readable (``adstudy sql``, ``adstudy report``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from study.cell import NAMED_FIELDS, canonical_json
from study.errors import SpecError
from study.store import ResultsStore
from trainables.param_records import normal_form

COLUMNS = [c for field in NAMED_FIELDS for c in (field, f"{field}_params")]


def unnormalised(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Each distinct named value of ``rows`` whose stored parameters are not in normal
    form, as 'loss lamp{"base":"l2"} (now lamp)'."""
    found: dict[str, None] = {}
    for row in rows:
        for field in NAMED_FIELDS:
            name, stored = row.get(field), row.get(f"{field}_params")
            if name is None or not stored:
                continue
            normal = canonical_json(normal_form(field, name, json.loads(stored)))
            if normal != canonical_json(json.loads(stored)):
                now = name if normal == "{}" else f"{name}{normal}"
                found[f"{field} {name}{stored} (now {now})"] = None
    return list(found)


def refuse_unnormalised(store: ResultsStore) -> None:
    """Raises SpecError when the study's stored cells include any whose parameters are not
    in normal form (see the module doc); returns quietly for an empty store."""
    values = unnormalised(store.read_trials(COLUMNS).to_pylist())
    if values:
        raise SpecError(
            f"{store.path} holds cells stored before parameters written at their default "
            f"were left out of cell ids: {'; '.join(values[:5])}"
            f"{' ...' if len(values) > 5 else ''}. Those cells now have other ids: submitted "
            "again, they would run a second time beside the stored rows. The stored study "
            "stays readable (adstudy sql, adstudy report); to run the spec, give it another "
            "study name"
        )
