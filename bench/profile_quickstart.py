"""Where a quickstart run's time goes (issue 21): start-up, training, scoring, store writes,
scheduling gaps.

Two parts, printed as Markdown:
  1. one whole `adstudy submit` (a subprocess, fresh results folder): when each line
     came, Ray's start, the trials' own time against wall time x slots (the gaps);
  2. one trial's pack in this process on one thread (as a Ray worker runs it), under
     cProfile: data and model set-up, training steps, per-epoch scoring (test errors,
     AUROC and the other figures), the final metrics; and the driver's store writes of
     its cells.

    python -m bench.profile_quickstart [--config configs/quickstart.yaml] [--skip-run]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (label, function name as cProfile lists it, file suffix)
PHASES = [
    ("data set-up (build_task)", "build_task", "trainables/assemble.py"),
    ("model + optimizer set-up (Stack)", "__init__", "trainables/train_stack.py"),
    ("training epochs (train_stack_epoch)", "train_stack_epoch", "trainables/train_stack.py"),
    ("test reconstruction errors (stacked_errors)", "stacked_errors",
     "trainables/train_stack.py"),
    ("per-epoch figures (test_figures: AUROC, means)", "test_figures", "trainables/metrics.py"),
    ("final metrics (detection_metrics: AUROC, AUPRs)", "detection_metrics",
     "trainables/metrics.py"),
]


def whole_run(config: str) -> None:
    """One submission: each output line's time, then the trials against the wall."""
    import pyarrow.dataset as ds

    adstudy = str(Path(sys.executable).parent / "adstudy")
    with tempfile.TemporaryDirectory() as results:
        start = time.perf_counter()
        proc = subprocess.Popen([adstudy, "submit", config, "--results", results,
                                 "--progress-every", "5"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        lines = [(time.perf_counter() - start, line.rstrip()) for line in proc.stdout]
        proc.wait()
        wall = time.perf_counter() - start
        study = lines[0][1].split("]")[0].lstrip("[") if lines else ""
        trials = ds.dataset(f"{results}/{study}/trials", format="parquet").to_table(
            columns=["trial_id", "trial_elapsed_s", "wall_s"]).to_pylist()
    print(f"### Whole run: `adstudy submit {config}` ({wall:.1f} s, load "
          f"{os.getloadavg()[0]:.1f})\n")
    for t, line in lines:
        if "cells |" not in line or t == lines[-1][0]:
            print(f"    {t:6.1f} s  {line}")
    up = next((t for t, line in lines if "Ray up" in line), 0.0)
    busy: dict[str, float] = {}
    for row in trials:
        busy[row["trial_id"]] = max(busy.get(row["trial_id"], 0.0), row["trial_elapsed_s"])
    slots = 2
    summed = sum(busy.values())
    print(f"\n{len(trials)} cells in {len(busy)} trials; trials' own time {summed:.1f} s "
          f"(mean {summed / len(busy):.2f} s a trial); after Ray was up: {wall - up:.1f} s "
          f"x {slots} slots = {slots * (wall - up):.1f} slot-seconds, "
          f"{100 * summed / (slots * (wall - up)):.0f}% busy in trials\n")


def one_pack(config: str) -> None:
    """The first pack of the plan, trained here on one thread under cProfile; then its
    cells written to a scratch store."""
    import torch

    from study.grid import expand
    from study.packing import auto_pack_size, pack_cells
    from study.spec import load_spec
    from study.store import ResultsStore
    from trainables.run import run_cells

    torch.set_num_threads(1)  # a Ray worker of one CPU: OMP_NUM_THREADS=1
    spec = load_spec(config)
    cells = expand(spec)
    pack = pack_cells(cells, auto_pack_size(len(cells), 2))[0]
    list(run_cells(pack, spec.run.data_root, "cpu"))  # warm: imports, the data cache
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    records = list(run_cells(pack, spec.run.data_root, "cpu"))
    profile.disable()
    total = time.perf_counter() - start
    stats = pstats.Stats(profile)
    print(f"### One trial ({len(pack)} cells stacked, {pack[0].epochs} epochs, one thread): "
          f"{total:.2f} s\n")
    print("| phase | s | share |")
    print("|---|---|---|")
    for label, name, suffix in PHASES:
        spent = sum(v[3] for (file, _, func), v in stats.stats.items()
                    if func == name and file.endswith(suffix))
        print(f"| {label} | {spent:.3f} | {100 * spent / total:.0f}% |")
    with tempfile.TemporaryDirectory() as results:
        store = ResultsStore(results, spec.study)
        store.prepare()
        by_id = {c.cell_id: c for c in pack}
        epochs: dict[str, list] = {}
        start = time.perf_counter()
        for cell_id, record in records:
            if record["kind"] == "epoch":
                epochs.setdefault(cell_id, []).append(record)
            else:
                store.write_cell(by_id[cell_id], record, epochs.get(cell_id, []))
        wrote = time.perf_counter() - start
    print(f"\nStore writes (driver): {wrote / len(pack) * 1000:.0f} ms a cell "
          f"(3 Parquet files), {wrote / len(pack) * len(cells):.1f} s for all "
          f"{len(cells)} cells\n")


def score_every_ab(config: str, every: int, rounds: int) -> None:
    """One pack trained here with test figures every epoch and every ``every``-th epoch
    (trainables.train.scored_epoch), in interleaved rounds; the final AUROCs compared."""
    import statistics

    import torch

    from study.grid import expand
    from study.packing import auto_pack_size, pack_cells
    from study.spec import load_spec
    from trainables.run import run_cells

    torch.set_num_threads(1)
    spec = load_spec(config)
    cells = expand(spec)
    pack = pack_cells(cells, auto_pack_size(len(cells), 2))[0]
    times: dict[int, list[float]] = {1: [], every: []}
    finals: dict[int, list] = {}
    for _ in range(rounds):
        for k in times:
            start = time.perf_counter()
            records = list(run_cells(pack, spec.run.data_root, "cpu", score_every=k))
            times[k].append(time.perf_counter() - start)
            finals[k] = [r.get("auroc") for _, r in records if r["kind"] == "final"]
    one, sparse = statistics.median(times[1]), statistics.median(times[every])
    print(f"### Test figures every epoch against every {every}th (one pack of {len(pack)}, "
          f"medians of {rounds} interleaved rounds)\n")
    print(f"every epoch {one:.2f} s, every {every}th epoch {sparse:.2f} s: {one / sparse:.2f}x; "
          f"final AUROCs identical: {finals[1] == finals[every]}\n")


def import_times() -> None:
    """Seconds to import what a driver and a worker load, each in a fresh process."""
    for what in ("torch", "ray", "ray.tune", "study.cli"):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {what}"], check=True, cwd=ROOT)
        print(f"- `import {what}`: {time.perf_counter() - start:.2f} s (a fresh process)")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--skip-run", action="store_true", help="no whole submission")
    parser.add_argument("--score-every", type=int, default=5,
                        help="the k of the test-figures-every-k-epochs comparison")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import_times()
    one_pack(args.config)
    score_every_ab(args.config, args.score_every, args.rounds)
    if not args.skip_run:
        whole_run(args.config)


if __name__ == "__main__":
    main()
