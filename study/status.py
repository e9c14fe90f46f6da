"""What a store holds, study by study (`adstudy status`), and what in it is damaged
(`adstudy check`). Reads the store only: works while a submit runs, and on an object store.

Expected cells come from the spec stored in study.json, expanded (study.grid: pure, no
torch); stored cells and their statuses from the store (study.store.cell_state); whether
a driver is at work, and how far it got, from its lease (study.lease: the heartbeat).
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow.fs as pafs

from study.errors import SpecError, StoreError
from study.grid import expand
from study.lease import is_live, iso, read_lease
from study.spec import parse_spec
from study.store import CELL_TABLES, ResultsStore
from study.store_files import MANIFEST, is_temp

NOTE = "note: temp files"  # never read, swept when old: listed, not damage
COLUMNS = ("study", "expected", "stored", "complete", "diverged", "pruned", "failed",
           "damaged", "running", "driver", "last_activity", "spec")


def expected_cells(record: dict[str, Any] | None) -> tuple[int | None, str]:
    """How many cells (grid) or trials (tuned: groups x n_trials) the stored spec names,
    and a note when it cannot tell."""
    if not record or not record.get("spec_yaml"):
        return None, "no spec in study.json"
    try:
        spec = parse_spec(record["spec_yaml"])
    except SpecError as err:
        return None, f"stored spec unreadable: {err}"
    cells = len(expand(spec))
    return (cells * spec.optuna.n_trials if spec.search == "optuna" else cells), ""


def study_status(store: ResultsStore, now: float | None = None) -> dict[str, Any]:
    """One study's row (COLUMNS); see the module doc."""
    now = time.time() if now is None else now
    try:
        record = store.read_study_json()
    except (ValueError, OSError):
        record = None
    expected, note = expected_cells(record)
    statuses = store.cell_state()
    counts = {s: sum(1 for v in statuses.values() if v == s)
              for s in ("complete", "diverged", "pruned", "failed")}
    lease = read_lease(store)
    live = is_live(lease, now)
    if expected is None and live and "cells_expected" in lease:  # study.json comes once
        expected, note = int(lease["cells_expected"]), ""  # the cluster took the driver
    running = None
    if live:
        running = max(0, int(lease.get("cells_total", 0)) - int(lease.get("cells_done", 0)))
    finished = store.read_trials(["finished_at"])["finished_at"].drop_null().to_pylist()
    moments = [*finished, *(record or {}).get("submitted_at", [])]
    if lease:
        moments.append(iso(lease.get("renewed", 0)))
    return {
        "study": store.study, "expected": expected,
        "stored": sum(counts[s] for s in ("complete", "diverged", "pruned")),
        **counts, "damaged": len(store.damaged), "running": running,
        "driver": driver_text(lease, live, now),
        "last_activity": max(moments) if moments else None,
        "spec": (record or {}).get("spec_path") or note or f"{store.shown}/study.json",
    }


def driver_text(lease: dict[str, Any] | None, live: bool, now: float) -> str:
    if not lease:
        return ""
    who = f"{lease.get('command', '?')} pid {lease.get('pid')} on {lease.get('host')}"
    age = now - float(lease.get("renewed", 0))
    if live:
        doing = "" if "cells_total" in lease else ", planning"
        return f"{who}{doing}, heartbeat {age:.0f} s ago"
    return f"{who} gone (last heartbeat {age:.0f} s ago)"


def check_store(store: ResultsStore) -> list[dict[str, str]]:
    """Everything in a study's folders a reader leaves out or a submit reruns: one row per
    problem (what, path or cell, why). Empty: the study is whole."""
    found: list[dict[str, str]] = []
    try:
        store.manifest()
    except StoreError as err:
        found.append({"what": "manifest", "where": f"{store.shown}/{MANIFEST}",
                      "why": str(err)})
    stored = store.cell_state()
    shown = {path: store.shown + path[len(store.path):] for path in store.unreadable}
    for path, why in store.unreadable.items():
        found.append({"what": "file left out", "where": shown[path], "why": why})
    for cell_id, why in sorted(store.damaged.items()):
        found.append({"what": "damaged cell", "where": cell_id,
                      "why": f"{why}; a submit reruns it"})
    trials = set(store.files("trials", check=False).cells) | set(stored) | set(store.damaged)
    for table in CELL_TABLES[1:]:
        for cell_id in sorted(set(store.files(table, check=False).cells) - trials):
            found.append({"what": "half-written cell", "where": cell_id,
                          "why": f"{table} without a trials row: not stored; a submit "
                                 "reruns it"})
    selector = pafs.FileSelector(store.path, recursive=True, allow_not_found=True)
    temps = [i.path for i in store.fs.get_file_info(selector)
             if i.type == pafs.FileType.File and is_temp(i.base_name)]
    if temps:
        found.append({"what": NOTE, "where": f"{store.shown}/...",
                      "why": f"{len(temps)} temp file(s) of writers at work or killed; a "
                             "submit removes those over an hour old"})
    return found
