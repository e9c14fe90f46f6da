"""Benchmark 2: scheduler efficiency of a study on Ray, before and after.

Efficiency = the sum of trials' own time (from a trial's start to its last cell's end, as
the trainable measures it) / (the submission's wall time x trial slots). Rows, in one run:
  ray default        one cell per trial, a new actor per trial (Ray Tune's default)
  reuse actors       one cell per trial, actors reused (datasets cached in the actor)
  packs (default)    cells packed per trial, stackable ones trained as one vmapped model
Each row runs the same grid (configs/quickstart.yaml unless --config) into its own
temporary results folder, on one local Ray started once.

    python -m bench.scheduler [--config configs/quickstart.yaml] [--cpus 2]
                              [--only default reuse packs]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import tempfile
import time

from analysis.stats import rows
from analysis.views import connect
from study.runner import init_ray, trial_slots
from study.spec import load_spec
from study.submit import submit

SETTINGS = {
    "default": ("ray default (1 cell/trial, new actor per trial)",
                {"cells_per_trial": 1, "reuse_actors": False}),
    "reuse": ("reuse actors (1 cell/trial)", {"cells_per_trial": 1, "reuse_actors": True}),
    "packs": ("packs + stacks (default)", {"cells_per_trial": 0, "reuse_actors": True}),
}


def measure(spec, results: str) -> tuple[float, float, int]:
    """(wall seconds, summed trial seconds, cells) of one submission."""
    start = time.perf_counter()
    submit(spec, results=results, out=io.StringIO())
    wall = time.perf_counter() - start
    (row,) = rows(connect(results), """
        SELECT sum(t) AS busy, sum(n) AS cells FROM (
          SELECT trial_id, max(trial_elapsed_s) AS t, count(*) AS n FROM trials GROUP BY 1)""")
    return wall, float(row["busy"]), int(row["cells"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--cpus", type=int, default=None, help="CPUs for the local Ray")
    parser.add_argument("--only", nargs="+", choices=list(SETTINGS), default=list(SETTINGS),
                        help="rows to measure (the speed-up column is against the first)")
    args = parser.parse_args()
    base = load_spec(args.config)
    init_ray(None, num_cpus=args.cpus)
    slots = trial_slots(base)
    print(f"# scheduler efficiency, {args.config}, {slots} trial slots")
    print("| how | cells | wall s | trial-seconds | efficiency | cells/hour | speed-up |")
    print("|---|---|---|---|---|---|---|")
    first = None
    for name, options in (SETTINGS[key] for key in args.only):
        spec = dataclasses.replace(base, run=dataclasses.replace(base.run, **options))
        wall, busy, cells = measure(spec, tempfile.mkdtemp(prefix="adstudy-sched-"))
        first = first or wall
        print(f"| {name} | {cells} | {wall:.1f} | {busy:.1f} | {busy / (wall * slots):.0%} "
              f"| {cells / wall * 3600:,.0f} | {first / wall:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
