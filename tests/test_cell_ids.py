"""Cell ids are the store's keys: every preset's ids stay those committed in
tests/data/cell_ids.json (tests/cell_ids.py computes them), so stored results keep
resuming across refactors."""

from __future__ import annotations

import json

from cell_ids import COMMITTED, preset_cell_ids


def test_every_preset_keeps_its_committed_cell_ids():
    committed = json.loads(COMMITTED.read_text())
    now = preset_cell_ids()
    assert sorted(now) == sorted(committed), "a preset was added or removed: rerun --write"
    for name, ids in committed.items():
        assert now[name] == ids, f"{name}: cell ids changed"
    assert sum(len(v) for ids in committed.values() for v in ids.values()) > 1000
