"""What stored results depend on, frozen: the cell ids of every preset (the store's keys;
tests/cell_ids.py computes them into tests/data/cell_ids.json) and the Parquet schemas of
every stored table (tests/data/schema.txt). A change to either makes stored studies run
their cells again or unreadable; it needs a migration (or a clear refusal) first, then
the files rewritten."""

from __future__ import annotations

import json
from pathlib import Path

from cell_ids import COMMITTED, preset_cell_ids

from study.schema import LANDSCAPE_POINTS, LANDSCAPE_SUMMARY, TABLES

SCHEMA = Path(__file__).resolve().parent / "data" / "schema.txt"


def test_every_preset_keeps_its_committed_cell_ids():
    committed = json.loads(COMMITTED.read_text())
    now = preset_cell_ids()
    assert sorted(now) == sorted(committed), "a preset was added or removed: rerun --write"
    for name, ids in committed.items():
        assert now[name] == ids, f"{name}: cell ids changed"
    assert sum(len(v) for ids in committed.values() for v in ids.values()) > 1000


def test_every_stored_table_keeps_its_schema():
    tables = [*TABLES.items(), ("landscape/points", LANDSCAPE_POINTS),
              ("landscape/summary", LANDSCAPE_SUMMARY)]
    text = "".join(f"[{name}]\n" + "".join(f"{f.name}: {f.type}\n" for f in schema)
                   for name, schema in tables)
    assert text == SCHEMA.read_text()
