"""Every cell id the presets name: what a refactor must keep (tests/test_frozen.py).

For a grid study, the id of every cell of ``expand(spec)``; for a tuned study, the id and
group id of every group's base cell and the ids of the cells that try each choice and both
ends of each range (the tuned cells plan validation builds). Stored results are found by
these ids: a change to any of them would make a resubmission run stored cells again.

    python tests/cell_ids.py --write      # after a deliberate, migrated change only
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
COMMITTED = Path(__file__).resolve().parent / "data" / "cell_ids.json"


def preset_cell_ids() -> dict[str, dict[str, list[str]]]:
    """config file name -> {"cells": [...]} (grid) or {"groups", "bases", "probes"} (tuned)."""
    from study.grid import expand
    from study.spec import load_spec
    from study.tuned_groups import base_cells, group_id, probe_cells, tuned_fields

    found: dict[str, dict[str, list[str]]] = {}
    for path in sorted(CONFIGS.glob("*.yaml")):
        spec = load_spec(path)
        if spec.search == "grid":
            found[path.name] = {"cells": [c.cell_id for c in expand(spec)]}
            continue
        bases = base_cells(spec)
        found[path.name] = {
            "groups": [group_id(c, tuned_fields(spec)) for c in bases],
            "bases": [c.cell_id for c in bases],
            "probes": [c.cell_id for c in probe_cells(spec, bases)],
        }
    return found


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if "--write" in sys.argv:
        COMMITTED.write_text(json.dumps(preset_cell_ids(), indent=1, sort_keys=True) + "\n")
        print(f"wrote {COMMITTED}")
    else:
        print(json.dumps(preset_cell_ids(), indent=1, sort_keys=True))
