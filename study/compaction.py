"""`adstudy compact`: a study's per-cell files merged into a few large Parquet files.

A study of N cells keeps 3N small files (trials, epochs, scores per cell): on an object
store every query lists and opens each of them. Compaction writes the rows of every
stored cell (study.store.cell_state: trials, epochs and scores all readable) into
groups of part files, ``<table>/part-<uuid>.parquet``, one part per table and group over
the same cells, and switches to them atomically:

1. the new parts are written (temp name, then rename); no manifest lists them yet, so
   readers leave them out;
2. ``compacted.json`` (the manifest) is replaced in one write: it lists the new groups
   only. From here readers read the new parts; a cell's own file still wins over a part,
   and holds the same rows;
3. the cells' own files, the parts of the old manifest and parts no manifest lists (an
   interrupted compaction's) are deleted.

A crash at any step leaves a store that reads the same rows. Cells that are not stored
(damaged, half written) keep their own files, so a resubmit reruns them; a cell rerun
after compaction (a failed one) writes its own files, which win over its part rows, and
the next compaction takes them. The study's lease (study.lease) is held throughout, so
no submit writes meanwhile.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc

from study.errors import StoreError
from study.lease import hold
from study.schema import TABLES
from study.store import CELL_TABLES, ResultsStore
from study.store_files import MANIFEST, PART_FILE, read_rows
from trainables.provenance import now

CELLS_PER_PART = 10_000  # scores of a 10,000-cell digits study: ~3.6M rows, ~40 MB a part
ORDER = {"trials": ["cell_id"], "epochs": ["cell_id", "epoch"], "scores": ["cell_id", "index"]}


@dataclasses.dataclass(frozen=True)
class Compacted:
    """What a compaction did."""

    cells: int  # cells now in parts
    groups: int  # part groups (one part per table each)
    files_removed: int  # own files and old parts deleted
    left: int  # cells not stored (damaged, half written): their own files stay

    def line(self, study: str) -> str:
        text = (f"[{study}] compacted {self.cells} cells into {self.groups} part(s) per "
                f"table; {self.files_removed} files removed")
        return text + (f"; {self.left} cells not stored keep their own files (a submit "
                       "reruns them)" if self.left else "")


def compact(store: ResultsStore, out: TextIO | None = None,
            cells_per_part: int = CELLS_PER_PART) -> Compacted:
    """Compacts a study (see the module doc), holding its lease.

    Raises:
        StoreError: when a driver holds the study (a submit at work), or no study is there.
    """
    if store.read_study_json() is None and not store.files("trials", check=False).paths:
        raise StoreError(f"no study {store.study!r} in {store.shown.rsplit('/', 1)[0]}")
    with hold(store, "compact", "compacting", out):
        return _compact(store, cells_per_part)


def _compact(store: ResultsStore, cells_per_part: int) -> Compacted:
    stored = store.cell_state()
    old_manifest = store.manifest()
    listing = {t: store.files(t) for t in CELL_TABLES}
    cells = sorted(stored)
    tables = {t: read_rows(store.fs, listing[t], TABLES[t])[0] for t in CELL_TABLES}
    groups = []
    for start in range(0, len(cells), cells_per_part):
        chosen = pa.array(cells[start:start + cells_per_part], pa.string())
        groups.append({t: _write_part(store, t, tables[t], chosen) for t in CELL_TABLES}
                      | {"cells": len(chosen)})
    manifest = {"version": 1, "compacted_at": now(), "groups": groups}
    store.write_bytes("", MANIFEST, json.dumps(manifest, indent=1).encode())
    kept = {g[t] for g in groups for t in CELL_TABLES}
    doomed = [listing[t].cells[c] for t in CELL_TABLES for c in cells if c in listing[t].cells]
    doomed += [f"{store.table_dir(t)}/{g[t]}" for g in old_manifest.get("groups", [])
               for t in CELL_TABLES if g.get(t) not in kept]
    doomed += [p for t in CELL_TABLES for p in listing[t].problems
               if PART_FILE.fullmatch(p.rsplit("/", 1)[-1]) and p.rsplit("/", 1)[-1] not in kept]
    removed = 0
    for path in doomed:
        try:
            store.fs.delete_file(path)
            removed += 1
        except FileNotFoundError:
            pass
    left = len({c for t in CELL_TABLES for c in listing[t].cells} - set(stored))
    return Compacted(len(cells), len(groups), removed, left)


def add_group(store: ResultsStore, tables: dict[str, pa.Table]) -> dict[str, str]:
    """Stores rows already gathered (a table name -> its rows, e.g. an import or a
    simulation) as one compacted group: a part per table, then the manifest extended by
    the group. The caller holds the study (its lease, or a store no driver uses).
    Returns the group (table -> part file name)."""
    group: dict[str, str] = {}
    for table, rows in tables.items():
        cells = pc.unique(rows["cell_id"]) if rows.num_rows else pa.array([], pa.string())
        group[table] = _write_part(store, table, rows, cells)
    manifest = store.manifest()
    manifest = {"version": 1, "compacted_at": now(),
                "groups": [*manifest.get("groups", []), group]}
    store.write_bytes("", MANIFEST, json.dumps(manifest, indent=1).encode())
    return group


def _write_part(store: ResultsStore, table: str, rows: pa.Table, cells: pa.Array) -> str:
    """One part of ``table`` holding the rows of ``cells``; returns its file name."""
    rows = rows.filter(pc.is_in(rows["cell_id"], cells))
    rows = rows.sort_by([(c, "ascending") for c in ORDER[table]])
    name = f"part-{uuid.uuid4().hex}"
    store.write_parquet(table, name, rows)
    return f"{name}.parquet"
