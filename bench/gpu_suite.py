"""Every GPU figure issue 19 owes, in one run that fits the device tool (docs/gpu.md).

Sections, each a markdown table appended to OUT/gpu_suite.md as soon as it is measured
(a run cut short keeps what it measured), every ratio against a baseline measured in
this same run:
  peak     measured fp32 and bf16 matmul peaks; the CAE's FLOPs a sample
  stacked  the stacked CAE step at batch >= 128: eager / CUDA graphs x fp32 / bf16
           (trainables.accelerate): samples/s, share of peak; graphs vs eager difference
  bf16     bf16 autocast vs fp32: the AUROC difference on configs/lmse_mnist_smoke.yaml's
           cells (real MNIST subset), scores kept on the device
  pack     cells/hour of LMSE-sized cells: the papers' loop (1 trial a GPU), ours, stacked,
           and P trials a GPU x stacked K together; GPU utilisation and FLOP share
  grid     configs/lmse_mnist_full.yaml through `adstudy submit` on full-size resampled
           MNIST (bench/mnist_full.py): wall time, cells/hour, `adstudy describe`'s estimate
  targets  each target of the issue with its measured figure
``--tiny`` runs every section at toy sizes (on the CPU: the test that keeps this script
working, tests/test_gpu_suite.py). A section that fails is written as failed, with why.

    python -m bench.gpu_suite --out DIR [--device cuda] [--budget-s 530] [--tiny]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
import traceback
from pathlib import Path

import torch

from bench import cells_per_hour as cph
from bench import gpu_parts as parts
from bench.common import MNIST5K, ROOT, machine
from bench.flops import train_step_flops
from bench.mnist_full import write as write_mnist
from study.cell import Cell


@dataclasses.dataclass(frozen=True)
class Sizes:
    stacks: tuple[int, ...] = (16, 64)  # cells a stack (stacked and pack rows)
    batch: int = 128  # the stacked step's batch
    samples: int = 4096  # images a cell in a timed stacked epoch
    procs: tuple[int, ...] = (4,)  # trials sharing the GPU in the pack rows (4: gpu 0.25)
    epochs: int = 2  # epochs of an LMSE-sized cell in the pack rows
    tiles: int = 14  # pack data: 14 tiles of the 5,000-image subset = MNIST's 70,000
    baseline_cells: int = 2
    bf16_spec: str = "configs/lmse_mnist_smoke.yaml"  # real MNIST subset (bf16 section)
    bf16_classes: tuple[int, ...] = tuple(range(10))
    bf16_epochs: int = 10
    peak_size: int = 8192
    grid_spec: str = "configs/lmse_mnist_full.yaml"
    grid_scale: float = 1.0  # of MNIST's size (bench/mnist_full.py)
    tiny: bool = False  # toy sizes: the report says so, the targets are not judged


TINY = Sizes(tiny=True, stacks=(2,), batch=16, samples=64, procs=(2,), epochs=1, tiles=1,
             baseline_cells=1, bf16_spec="configs/quickstart.yaml", bf16_classes=(0,),
             bf16_epochs=1, peak_size=256, grid_scale=0.01)
# Seconds a section may start with (the grid takes what is left).
NEEDS = {"peak": 10, "stacked": 20, "bf16": 30, "pack": 60, "grid": 60}


class Report:
    """The markdown file, appended to and flushed section by section; figures for the
    targets table kept as they come."""

    def __init__(self, path: Path):
        self.path, self.figures = path, {}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")

    def write(self, *lines: str) -> None:
        with open(self.path, "a") as f:
            f.write("\n".join(lines) + "\n")
        print(*lines, sep="\n", flush=True)

    def table(self, head: list[str], rows: list[list]) -> None:
        self.write("| " + " | ".join(head) + " |", "|---" * len(head) + "|",
                   *("| " + " | ".join(str(c) for c in row) + " |" for row in rows), "")


def peak(report: Report, sizes: Sizes, device: torch.device, _: Path) -> None:
    fp32 = parts.matmul_peak(device, sizes.peak_size, torch.float32)
    bf16 = parts.matmul_peak(device, sizes.peak_size, torch.bfloat16)
    per_sample, rate = train_step_flops("cae", sizes.batch, device)
    report.figures |= {"fp32_peak": fp32, "bf16_peak": bf16, "flops_sample": per_sample}
    report.table(["measured", "value"], [
        [f"fp32 matmul peak ({sizes.peak_size}²)", f"{fp32 / 1e9:,.1f} GFLOP/s"],
        [f"bf16 matmul peak ({sizes.peak_size}²)", f"{bf16 / 1e9:,.1f} GFLOP/s"],
        ["CAE (28×28) training FLOPs a sample, fwd+bwd", f"{per_sample / 1e6:.3f} MFLOP"],
        [f"one CAE cell, eager, batch {sizes.batch}",
         f"{rate / 1e9:,.1f} GFLOP/s = {rate / fp32:.2%} of fp32 peak"]])


def stacked(report: Report, sizes: Sizes, device: torch.device, _: Path) -> None:
    x = torch.rand(sizes.samples, 1, 28, 28, device=device)
    per_sample, rows, best = report.figures["flops_sample"], [], 0.0
    for k in sizes.stacks:
        for bf16 in (False, True):
            for graphs in (False, True):
                rate = parts.stacked_rate(k, sizes.batch, x, bf16, graphs)
                flops = rate * per_sample
                peak_of = report.figures["bf16_peak" if bf16 else "fp32_peak"]
                best = max(best, flops / peak_of)
                used = "graphs" if graphs and device.type == "cuda" else "eager"
                rows.append([k, sizes.batch, "bf16" if bf16 else "fp32",
                             used + ("" if not graphs or used == "graphs" else " (no CUDA)"),
                             f"{rate:,.0f}", f"{flops / 1e9:,.1f}", f"{flops / peak_of:.2%}"])
    report.table(["K", "batch", "precision", "steps", "cell-samples/s", "GFLOP/s",
                  "share of peak (same precision)"], rows)
    diff = parts.graph_difference(sizes.stacks[0], sizes.batch, x[: sizes.batch * 6])
    report.figures["best_share"] = best
    report.write(f"CUDA graphs vs eager, K={sizes.stacks[0]}, 2 epochs: largest relative "
                 f"train_loss difference {diff:.2e}", "")


def bf16(report: Report, sizes: Sizes, device: torch.device, _: Path) -> None:
    import numpy as np
    from scipy import stats

    from study.grid import expand
    from study.spec import load_spec
    from trainables.stacking import stack_key

    cells = [c for c in expand(load_spec(ROOT / sizes.bf16_spec))
             if c.normal_class in sizes.bf16_classes and c.latent_dim == 16 and c.seed == 0]
    cells = [Cell(**{**c.to_dict(), "epochs": sizes.bf16_epochs}) for c in cells]
    families: dict = {}
    for c in cells:
        families.setdefault(stack_key(c), []).append(c)
    deltas, seconds = [], {False: 0.0, True: 0.0}
    for family in families.values():
        got = {}
        for half in (False, True):
            got[half], s = parts.accelerated_aurocs(family, str(MNIST5K.parent), device, half)
            seconds[half] += s
        deltas += list(got[True] - got[False])
    d = np.asarray(deltas)
    low, high = stats.t.interval(0.95, len(d) - 1, d.mean(), stats.sem(d)) if len(d) > 1 \
        else (float("nan"), float("nan"))
    report.figures["bf16_delta"] = (d.mean(), low, high, np.abs(d).max())
    report.table(["cells", "epochs", "mean ΔAUROC (bf16 − fp32)", "95% CI", "max |Δ|",
                  "fp32 s", "bf16 s"],
                 [[len(d), sizes.bf16_epochs, f"{d.mean():+.4f}", f"[{low:+.4f}, {high:+.4f}]",
                   f"{np.abs(d).max():.4f}", f"{seconds[False]:.1f}", f"{seconds[True]:.1f}"]])
    report.write("Tolerance: ±0.005 AUROC (the analysis' default equivalence margin); "
                 f"cells: {Path(sizes.bf16_spec).stem}'s of latent 16 and seed 0, both "
                 "losses, classes " + ", ".join(map(str, sizes.bf16_classes)) + ".", "")


def pack(report: Report, sizes: Sizes, device: torch.device, scratch: Path) -> None:
    root = scratch / "pack"
    root.mkdir()
    cph.make_data(root, sizes.tiles)
    dev, e, rows = str(device), sizes.epochs, []
    sampler = cph.GpuSampler()
    sampler.start()
    base = cph.baseline_cells_per_hour(device, e, sizes.baseline_cells, tiles=sizes.tiles)
    rows.append(["papers' loop, 1 trial a GPU", base, sampler.mean()])
    rows.append(["ours, 1 trial a GPU", *cph.processes_cells_per_hour(1, str(root), dev, e)])
    for k in sizes.stacks:
        rows.append([f"ours, stacked K={k}, 1 trial",
                     *cph.stacked_cells_per_hour(k, str(root), dev, e)])
        for procs in sizes.procs:
            rows.append([f"ours, {procs} trials a GPU × stacked K={k}",
                         *cph.processes_cells_per_hour(procs, str(root), dev, e, k, True)])
    train, test = 6000 * sizes.tiles // 14, 10000 * sizes.tiles // 14
    per_cell = e * (train + test / 3) * report.figures["flops_sample"]  # eval: fwd only
    share = [rate * per_cell / 3600 / report.figures["fp32_peak"] for _, rate, _ in rows]
    report.figures["pack_best"] = max(rate / base for _, rate, _ in rows)
    report.figures["baseline_cells_hour"] = base
    report.table(["how", "cells/hour", "vs papers' loop", "GPU util", "FLOP share (fp32)"],
                 [[how, f"{rate:,.0f}", f"{rate / base:.2f}x", util, f"{s:.2%}"]
                  for (how, rate, util), s in zip(rows, share, strict=True)])
    report.write(f"Cells: CAE, {train:,} training / {test:,} test images, batch 64, {e} "
                 "epoch(s), Adam; FLOP share counts a test image as a third of a training one.",
                 "")


def grid(report: Report, sizes: Sizes, device: torch.device, scratch: Path,
         budget_s: float = 600) -> None:
    data = scratch / "data"
    write_mnist(data, MNIST5K, sizes.grid_scale)
    spec = ROOT / sizes.grid_spec
    if device.type == "cpu":  # the same grid, small enough for a test: no GPU asked for
        spec = tiny_grid(spec, scratch / "tiny_grid.yaml")
    got = parts.run_grid(spec, data, scratch / "results", budget_s)
    st, wall = got["status"], got["wall_s"]
    done = st["stored"]
    rate = done / wall * 3600 if done else 0.0
    whole = wall * st["expected"] / done if done else float("nan")
    report.figures["grid"] = (done, st["expected"], wall, whole)
    report.table(["spec", "cells stored / expected", "failed", "wall s (Ray start included)",
                  "cells/hour", "whole grid at this rate", "exit"],
                 [[spec.name, f"{done} / {st['expected']}", st["failed"], f"{wall:.0f}",
                   f"{rate:,.0f}", f"{whole / 60:.1f} min", got["exit"]]])
    report.write("`adstudy describe`'s estimate for it:", "",
                 *(f"    {line}" for line in got["estimate"]), "",
                 "Data: full-size MNIST RESAMPLED from the 5,000-image subset "
                 "(bench/mnist_full.py), not real MNIST: AUROCs not comparable to the paper.",
                 "submit's last lines: " + " / ".join(got["tail"]), "")


def tiny_grid(spec: Path, out: Path) -> Path:
    """``spec`` cut to a toy: 2 classes, one latent dim, 1 epoch, no GPU."""
    import yaml

    data = yaml.safe_load(spec.read_text())
    data["study"] += "_tiny"
    data["vary"] |= {"normal_class": [0, 1], "latent_dim": [8]}
    data["fixed"] |= {"epochs": 1, "batch_size": 64}
    data["resources"] = {"cpu": 1, "gpu": 0}
    out.write_text(yaml.safe_dump(data))
    return out


SECTIONS = {"peak": peak, "stacked": stacked, "bf16": bf16, "pack": pack, "grid": grid}


def targets(report: Report, device: torch.device, tiny: bool) -> None:
    """Issue 19's targets beside what this run measured (absent: the section did not
    run; a tiny run's figures are not the targets' workload, and say so)."""
    f = report.figures
    rows = []
    if "pack_best" in f:
        rows.append(["≥ 50× the cells/hour of the papers' loop (1 trial a GPU)",
                     f"{f['pack_best']:.1f}×", "met" if f["pack_best"] >= 50 else "not met"])
    if "best_share" in f:
        rows.append(["≥ 10% of the measured peak, stacked CAE at batch ≥ 128",
                     f"{f['best_share']:.1%}", "met" if f["best_share"] >= 0.10 else "not met"])
    if "grid" in f:
        done, expected, wall, whole = f["grid"]
        met = done == expected and wall < 900
        rows.append(["the LMSE MNIST grid in under 15 minutes of one GPU",
                     f"{done}/{expected} cells in {wall / 60:.1f} min (whole: "
                     f"{whole / 60:.1f} min at this rate)", "met" if met else "not met"])
    if "bf16_delta" in f:
        mean, low, high, worst = f["bf16_delta"]
        ok = -0.005 < low and high < 0.005
        rows.append(["bf16 within tolerance (±0.005 AUROC) of fp32", f"{mean:+.4f} "
                     f"[{low:+.4f}, {high:+.4f}], max |Δ| {worst:.4f}",
                     "within" if ok else "not shown within"])
    if tiny:
        rows = [[target, measured, "n/a (tiny sizes)"] for target, measured, _ in rows]
    report.write(f"## Targets ({machine(device)})", "")
    report.table(["target", "measured", "verdict"], rows)


def run(out: Path, device: torch.device, sizes: Sizes, only: list[str], budget_s: float
        ) -> Report:
    """Runs the sections in order while the budget lasts; returns the report."""
    deadline = time.monotonic() + budget_s
    report = Report(out / "gpu_suite.md")
    report.write(f"# GPU suite on {machine(device)}, torch {torch.__version__}, "
                 f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit "
                 f"{commit()}{' (tiny sizes)' if sizes.tiny else ''}", "")
    with tempfile.TemporaryDirectory(prefix="adstudy-gpu-suite-") as scratch:
        for name in [n for n in SECTIONS if n in only or n == "peak"]:
            left = deadline - time.monotonic()
            report.write(f"## {name}", "")
            if left < NEEDS[name]:
                report.write(f"skipped: {left:.0f} s of the budget left", "")
                continue
            folder = Path(scratch) / name
            folder.mkdir()
            try:
                args = (report, sizes, device, folder)
                SECTIONS[name](*args, **({"budget_s": left - 30} if name == "grid" else {}))
            except Exception:  # a failed section is a result too: the others still run
                report.write("failed:", "```", traceback.format_exc(limit=4), "```", "")
    targets(report, device, sizes.tiny)
    return report


def commit() -> str:
    """The commit measured: $ADSTUDY_COMMIT (a device machine gets no .git), else git's."""
    import os
    import subprocess

    if os.environ.get("ADSTUDY_COMMIT"):
        return os.environ["ADSTUDY_COMMIT"]
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                          capture_output=True)
    return done.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_suite.md")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--budget-s", type=float, default=530,
                        help="seconds for every section together (the grid takes the rest)")
    parser.add_argument("--tiny", action="store_true", help="toy sizes (a CPU test)")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS),
                        help="sections to run (peak always runs: the others need it)")
    parser.add_argument("--procs", nargs="+", type=int,
                        help="trials sharing the GPU in the pack rows (default: 4)")
    args = parser.parse_args()
    if not MNIST5K.exists():
        raise SystemExit(f"error: {MNIST5K} not found: set ADSTUDY_MNIST5K (docs/gpu.md)")
    sizes = TINY if args.tiny else Sizes()
    if args.procs:
        sizes = dataclasses.replace(sizes, procs=tuple(args.procs))
    run(args.out, torch.device(args.device), sizes, args.only, args.budget_s)


if __name__ == "__main__":
    main()
