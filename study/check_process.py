"""The cell checks (study.validate) in a child Python process, while the driver starts Ray.

Both take seconds on 2 CPU cores: the checks import torch and probe each model, loss and
optimizer; Ray's start imports Ray and Tune and waits for its processes. In a thread of
the driver the checks would share its GIL with Ray's start (measured: no sooner done than
one after the other); a process of their own runs on the other core. Checks that cost
the driver little run in it at once: their answer known (study.validate's cache), or
torch loaded already (a notebook, a test), or no process could be started.

The child is in a session of its own, so a Ctrl-C at the terminal reaches the driver only;
the driver ends the child when it stops waiting for it (Checks.close). Run as
``python -m study.check_process``: the job as JSON on stdin, the problems as JSON on the
last line of stdout, and the seconds it began and ended at (time.time()).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from study.cell import Cell
from study.spec_values import raise_all
from study.validate import ROOT, all_problems, known_good

log = logging.getLogger("study.check_process")


class Checks:
    """The checks of ``cells``, started at once (study.validate.check's arguments); those
    run in the driver raise their SpecError at once, before Ray starts."""

    def __init__(self, cells: Sequence[Cell], data_root: str | None, shape_root: str | None):
        self.found: list[str] | None = None
        self.child: subprocess.Popen | None = None
        if "torch" in sys.modules or known_good(
                cells, shape_root if shape_root is not None else data_root):
            self.found = all_problems(cells, data_root, shape_root)
            raise_all(self.found)
            return
        job = {"cells": [c.to_dict() for c in cells], "data_root": data_root,
               "shape_root": shape_root}
        self.errors = tempfile.TemporaryFile("w+")  # a file: a full pipe would stop the child
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        try:
            self.child = subprocess.Popen(
                [sys.executable, "-m", "study.check_process"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=self.errors, text=True, start_new_session=True,
                env={**os.environ, "PYTHONPATH": path})
        except OSError:  # no interpreter to start (an embedded Python): here, then
            self.errors.close()
            self.found = all_problems(cells, data_root, shape_root)
            raise_all(self.found)
            return
        self.child.stdin.write(json.dumps(job))
        self.child.stdin.close()

    def result(self) -> None:
        """Waits for the checks.

        Raises:
            SpecError: naming every problem of the cells.
            RuntimeError: when the child process failed (its last error lines said).
        """
        if self.found is None:
            out = self.child.stdout.read()
            if self.child.wait() != 0 or not out.strip():
                self.errors.seek(0)
                raise RuntimeError("the cell checks' process failed: "
                                   f"{self.errors.read().strip()[-2000:]}")
            answer = json.loads(out.strip().splitlines()[-1])
            log.debug("cell checks ran from %.3f to %.3f in pid %d: %d problems",
                      answer["began"], answer["ended"], self.child.pid, len(answer["found"]))
            self.found = answer["found"]
        raise_all(self.found)

    def close(self) -> None:
        """Ends the child if it still runs (the driver stopped waiting: Ctrl-C, Ray failed)."""
        if self.child is not None:
            if self.child.poll() is None:
                self.child.kill()
                self.child.wait()
            self.child.stdout.close()
            self.errors.close()


def main() -> None:
    began = time.time()
    job = json.load(sys.stdin)
    cells = [Cell.from_dict(c) for c in job["cells"]]
    found = all_problems(cells, job["data_root"], job["shape_root"])
    print(json.dumps({"found": found, "began": began, "ended": time.time()}), flush=True)


if __name__ == "__main__":
    main()
