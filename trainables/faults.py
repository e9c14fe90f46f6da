"""A test hook that kills a trial's process at once, as the OOM killer or a segfault would.

``ADSTUDY_FAULT_INJECT="<cell_id>[@<marker path>],..."`` makes the process that trains one
of those cells exit (os._exit(137), no cleanup, no Python exception) as the cell starts.
With ``@<marker path>`` it exits only while the marker file does not exist, creating it
first, so the attempt Tune retries succeeds. Read in the trial process by
trainables.run.run_cell (cells trained one at a time: ``cells_per_trial: 1`` or a group
that does not stack); unset, it costs one environment lookup. Ray workers inherit the
variable from the driver that starts a local Ray. Used by tests/test_reliability_faults.py;
docs/reliability.md lists what it shows.
"""

from __future__ import annotations

import os
from pathlib import Path

FAULT_ENV = "ADSTUDY_FAULT_INJECT"
EXIT_CODE = 137  # what a process killed by SIGKILL (as the OOM killer does) reports


def injected_fault(cell_id: str) -> None:
    """Exits this process when ``FAULT_ENV`` names ``cell_id`` (see the module doc)."""
    entries = os.environ.get(FAULT_ENV, "")
    for entry in filter(None, (e.strip() for e in entries.split(","))):
        target, _, marker = entry.partition("@")
        if target != cell_id:
            continue
        if marker:
            if Path(marker).exists():
                return
            Path(marker).touch()
        os._exit(EXIT_CODE)
