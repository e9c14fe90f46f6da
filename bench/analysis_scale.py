"""Benchmark: the analysis of a large study — claims and the full report — on a synthetic
store written through the real results store (one Parquet file per cell and table).

The study: 2 losses x 10 normal classes x 100 configurations (5 lr x 5 latent x 4 batch
sizes) x 10 seeds = 20,000 cells of 50 epochs each (1,000,000 epoch rows) and 200 test
scores each (4,000,000 score rows). The baseline, measured in the same run: one full scan
of the three views (what any analysis of these files must at least read). Target: report
and claims in under 2 minutes on 2 CPU cores.

    python -m bench.analysis_scale [--store /tmp/adstudy-bench-analysis] [--cells 20000]
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from analysis.claims import claims
from analysis.report import build_report
from analysis.views import connect, materialize, rows
from study.cell import Cell
from study.store import ResultsStore

STUDY = "scale"
EPOCHS = 50
SCORES = 200  # test images per trial (20% anomalies)
CONFIGS = list(itertools.product((3e-4, 1e-3, 3e-3, 1e-2, 3e-2), (4, 8, 16, 32, 64),
                                 (16, 32, 64, 128)))


def cells(n: int) -> list[Cell]:
    """The first n cells of the grid (loss fastest, then seed, class, configuration)."""
    grid = itertools.product(CONFIGS, range(10), range(10), ("mse", "lmse"))
    return [Cell(study=STUDY, loss=loss, normal_class=k, seed=s, lr=lr, latent_dim=latent,
                 batch_size=bs, epochs=EPOCHS)
            for (lr, latent, bs), k, s, loss in itertools.islice(grid, n)]


def trial(cell: Cell, rng: np.random.Generator) -> tuple[dict, list[dict]]:
    """A plausible trial: a falling train_mse, a rising test AUROC, scores to match."""
    level = 0.02 * (1 + 0.1 * cell.normal_class) * (1.1 if cell.loss == "lmse" else 1.0)
    epoch = np.arange(1, EPOCHS + 1)
    mse = level * (1 + 4 * np.exp(-epoch / 8)) * np.exp(0.02 * rng.standard_normal(EPOCHS))
    auroc = np.clip(0.95 - 0.3 * np.exp(-epoch / 6) + 0.01 * rng.standard_normal(EPOCHS), 0, 1)
    labels = (np.arange(SCORES) < SCORES // 5).astype(int)
    scores = rng.standard_normal(SCORES) + 2.0 * labels
    epochs = [{"epoch": int(e), "train_loss": float(m), "train_mse": float(m),
               "test_auroc": float(a), "test_mse_normal": float(m),
               "test_mse_anomalous": float(2 * m), "grad_norm": 1.0, "wall_s": 0.01 * int(e)}
              for e, m, a in zip(epoch, mse, auroc, strict=True)]
    final = {"status": "complete", "auroc": float(auroc[-1]), "aupr_in": float(auroc[-1]),
             "aupr_out": float(auroc[-1]), "final_train_loss": float(mse[-1]),
             "final_train_mse": float(mse[-1]), "epochs_run": EPOCHS, "wall_s": 1.0,
             "scores": scores.tolist(), "labels": labels.tolist(), "adstudy_version": "0.1.0"}
    return final, epochs


def write_store(root: Path, n: int) -> None:
    """The synthetic study under root (kept: a second run reuses it)."""
    store = ResultsStore(str(root), STUDY)
    if len(list((root / STUDY / "trials").glob("*.parquet"))) == n:
        return
    store.prepare()
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for i, cell in enumerate(cells(n), start=1):
        store.write_cell(cell, *trial(cell, rng))
        if i % 2000 == 0:
            print(f"  wrote {i} cells ({time.perf_counter() - started:.0f} s)", flush=True)


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def scan(results: str) -> None:
    """The baseline: every row of the three views read once."""
    con = connect(results, [STUDY])
    for table in ("trials", "epochs", "scores"):
        rows(con, f"SELECT count(*), max(COLUMNS(*)) FROM {table}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="/tmp/adstudy-bench-analysis")
    parser.add_argument("--cells", type=int, default=20_000)
    args = parser.parse_args()
    root = Path(args.store)
    print(f"# analysis of a synthetic {args.cells}-cell study ({EPOCHS} epochs each), {root}")
    write_store(root, args.cells)
    base, _ = timed(lambda: scan(str(root)))
    report_s, _ = timed(lambda: build_report([STUDY], results=str(root),
                                             out=str(root / "report")))
    read_s, con = timed(lambda: materialize(connect(str(root), [STUDY])))
    judge_s, found = timed(lambda: claims(con, "mse"))
    print("| step | seconds | vs one scan |")
    print("|---|---|---|")
    for step, seconds in (
            ("one scan of trials, epochs, scores (baseline)", base),
            ("**report with its claims** (`adstudy report`: md + html, 6 figures)", report_s),
            ("claims alone (`adstudy sql claims`): open the views, read trials and epochs "
             "once", read_s),
            (f"claims alone: judge ({len(found)} claims, from the tables read)", judge_s)):
        print(f"| {step} | {seconds:.1f} | {seconds / base:.2f}x |")
    for row in found:
        print(f"  {row['name']}: {row['verdict']} ({row['n_units']} units, "
              f"{row['n_pairs']} pairs)")


if __name__ == "__main__":
    main()
