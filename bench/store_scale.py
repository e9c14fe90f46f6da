"""Benchmark: a 20,000-cell study's store before and after `adstudy compact`, on a local
folder and on an S3-protocol server on the loopback address (moto's, started here).

The study is synthetic, written through the real store (study.store: one Parquet file per
cell and table, temp name then rename): 2 losses x 10 classes x 1,000 seeds, 10 epochs and
100 test scores a cell (60,000 files). Timed as a user runs them, each a fresh
``adstudy`` process: ``adstudy sql "select count(*), avg(auroc) from trials"`` and
``adstudy report``, before and after ``adstudy compact``. The baseline, measured in the
same run: the count query before compaction. Target: the count query under 2 s locally
after compaction.

    python -m bench.store_scale [--cells 20000] [--s3-cells 20000] [--no-report]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from study.cell import Cell
from study.store import ResultsStore

ROOT = Path(__file__).resolve().parents[1]
STUDY = "scale"
EPOCHS = 10
SCORES = 100
COUNT = "select count(*) n, avg(auroc) a from trials"
WRITERS = 16  # threads writing cells (pyarrow releases the GIL for IO)


def cells(n: int) -> list[Cell]:
    grid = itertools.product(range(1000), range(10), ("mse", "lmse"))
    return [Cell(study=STUDY, loss=loss, normal_class=k, seed=s, epochs=EPOCHS)
            for s, k, loss in itertools.islice(grid, n)]


def trial(cell: Cell) -> tuple[dict, list[dict]]:
    rng = np.random.default_rng(cell.seed * 100 + cell.normal_class)
    labels = (np.arange(SCORES) < SCORES // 5).astype(int)
    auroc = float(np.clip(0.9 + 0.02 * rng.standard_normal(), 0, 1))
    epochs = [{"epoch": e, "train_loss": 1 / e, "train_mse": 1 / e, "test_auroc": auroc}
              for e in range(1, EPOCHS + 1)]
    final = {"status": "complete", "auroc": auroc, "aupr_in": auroc, "aupr_out": auroc,
             "final_train_loss": 0.1, "final_train_mse": 0.1, "epochs_run": EPOCHS,
             "scores": (rng.standard_normal(SCORES) + 2.0 * labels).tolist(),
             "labels": labels.tolist()}
    return final, epochs


def write_store(results: str, n: int) -> float:
    """The synthetic study under ``results``; returns the seconds it took."""
    store = ResultsStore(results, STUDY)
    store.prepare()
    store.write_study_json({"study": STUDY, "spec_yaml": f"study: {STUDY}\n"
                            "compare:\n  loss: [mse, lmse]\nvary:\n  normal_class: "
                            f"[{', '.join(map(str, range(10)))}]\n  seed: "
                            f"{list(range(n // 20))}\nfixed:\n  epochs: {EPOCHS}\n"})
    started = time.perf_counter()
    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(lambda c: store.write_cell(c, *trial(c)), cells(n)))
    return time.perf_counter() - started


def adstudy(*args: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system: what a busy shared machine does not
    inflate) of one ``adstudy`` process (exit 0 asserted)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "study.cli", *args], cwd=ROOT, text=True,
                          capture_output=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"adstudy {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def measure(where: str, results: str, n: int, report: bool, out: Path) -> list[tuple]:
    """Rows (backend, step, seconds) for one backend."""
    found = [(where, f"write {n:,} cells ({3 * n:,} files, {WRITERS} threads)",
              (write_store(results, n), float("nan")))]
    steps = [("count query", ("sql", COUNT, "--results", results))]
    if report:
        steps.append(("report", ("report", STUDY, "--results", results, "--out", str(out))))
    for label, args in steps:
        found.append((where, f"{label}, per-cell files", adstudy(*args)))
    found.append((where, "`adstudy compact`", adstudy("compact", STUDY, "--results", results)))
    for label, args in steps:
        found.append((where, f"{label}, compacted", adstudy(*args)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--s3-cells", type=int, default=20_000, help="0: no S3 run")
    parser.add_argument("--no-report", action="store_true", help="time the count query only")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="adstudy-store-scale-") as temp:
        rows += measure("local folder", f"{temp}/results", args.cells, not args.no_report,
                        Path(temp) / "report")
        if args.s3_cells:
            sys.path.insert(0, str(ROOT / "tests"))  # the tests' loopback S3 server
            from moto_s3 import s3_server

            with s3_server(Path(temp) / "moto.log") as server:
                rows += measure("S3 (moto, 127.0.0.1)", server.uri("results"), args.s3_cells,
                                not args.no_report, Path(temp) / "report-s3")
    base = {w: s[0] for w, step, s in rows if step == "count query, per-cell files"}
    print(f"load average before the run's end: {os.getloadavg()[0]:.1f}")
    print("| store | step | seconds | CPU seconds | vs the count query before compaction |")
    print("|---|---|---|---|---|")
    for where, step, (seconds, cpu) in rows:
        print(f"| {where} | {step} | {seconds:.2f} | {cpu:.2f} | "
              f"{seconds / base[where]:.3f}x |")


if __name__ == "__main__":
    main()
