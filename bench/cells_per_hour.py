"""Benchmarks 2-4 on one device: cells/hour of LMSE-sized cells, by how they are run.

An LMSE-sized cell: the CAE (16-32-64) on 28x28 images, one normal class of an MNIST-sized
set (6,000 training images, 10,000 test images, tiled from the real 5,000-image subset),
batch size 64, Adam. Rows, all in this one run:
  baseline      one trial per device, the usual DataLoader loop (bench/common.py)
  ours xP       P processes sharing the device (Ray's fractional GPU), trainables.train
  stacked K     K cells in one vmapped model in one process (trainables.train_stack)
  P x stacked K P processes sharing the device, each training a stack of K cells (packing
                and stacking together: resources.gpu 1/P with stacked groups)
GPU utilisation is sampled with nvidia-smi while each row runs.

    python -m bench.cells_per_hour [--device cuda] [--epochs 2] [--procs 1 2 4 8]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch.utils.data import DataLoader

from bench.common import MNIST5K, PilImages, baseline_epoch, images_uint8, machine, timed
from study.cell import Cell
from trainables.models import MODELS

EPOCHS = 2


def make_data(folder: Path, tiles: int = 14) -> None:
    """70,000 images (MNIST's size) tiled from the real subset: 6,000 of each class to
    train and 1,000 to test, as the npz dataset's 1/7 test split gives (``tiles`` < 14:
    a smaller set, for a tiny run)."""
    x, _ = images_uint8()
    with np.load(MNIST5K) as d:
        y = d["y"]
    np.savez(folder / "mnist70k.npz", x=np.tile(x, (tiles, 1, 1)), y=np.tile(y, tiles))


def cell(seed: int, epochs: int) -> Cell:
    return Cell(study="bench", dataset="npz",
                dataset_params='{"path":"mnist70k.npz","test_fraction":0.14285714}',
                normal_class=1, model="cae", latent_dim=16, loss="mse", optimizer="adam",
                lr=0.001, batch_size=64, epochs=epochs, seed=seed)


def stack_cell(seed: int, epochs: int) -> Cell:
    """A cell of a stack: seeds and four lrs vary, as in a grid's stackable family."""
    return Cell(**{**cell(seed, epochs).to_dict(), "lr": 0.001 * (1 + seed % 4)})


def run_cells(seeds: list[int], root: str, device: str, epochs: int, out, barrier,
              stacked: bool = False) -> None:
    """A trial process: warm up (imports, data, CUDA context) like a reused Ray actor,
    wait for the others, then train its cells (``stacked``: as one vmapped stack)."""
    from trainables.train import train_cell
    from trainables.train_stack import train_stack

    list(train_cell(Cell(**{**cell(0, 1).to_dict(), "max_train": 64}), root, device))
    if stacked:
        list(train_stack([stack_cell(s, 1) for s in (0, 1)], root, device))
    barrier.wait()
    if stacked:
        list(train_stack([stack_cell(s, epochs) for s in seeds], root, device))
    for seed in [] if stacked else seeds:
        list(train_cell(cell(seed, epochs), root, device))
    out.put(len(seeds))


class GpuSampler(threading.Thread):
    """Samples nvidia-smi's utilisation every 0.2 s until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        if not shutil.which("nvidia-smi"):
            return
        while not self.stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True)
            try:
                self.samples.append(float(out.stdout.split()[0]))
            except (ValueError, IndexError):
                pass
            time.sleep(0.2)

    def mean(self) -> str:
        self.stop.set()
        return f"{np.mean(self.samples):.0f}%" if self.samples else "n/a"


def baseline_cells_per_hour(device: torch.device, epochs: int, n_cells: int = 2,
                            batch_size: int = 64, tiles: int = 14) -> float:
    """Cells/hour of the papers' loop on one device, one cell after another (``tiles``
    as make_data's: 14 gives 6,000 training and 10,000 test images a cell)."""
    x, _ = images_uint8()
    with np.load(MNIST5K) as d:
        y = d["y"]
    train = np.tile(x[y == 1], (12, 1, 1))[: 6000 * tiles // 14]
    test = np.tile(x, (2, 1, 1))[: 10000 * tiles // 14]
    labels = (np.tile(y, 2) != 1).astype(int)[: len(test)]

    def one_cell(seed: int) -> None:
        torch.manual_seed(seed)
        model = MODELS["cae"]((1, 28, 28), 16).to(device)
        optimizer = torch.optim.Adam(model.parameters(), 1e-3)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            baseline_epoch(model, train, batch_size, device, optimizer, generator)
            model.eval()
            with torch.no_grad():  # per-epoch test scoring, the same work our loop does
                scores = [((model(b.to(device)).recon - b.to(device)) ** 2).mean(dim=(1, 2, 3))
                          .cpu() for b in DataLoader(PilImages(test), batch_size=batch_size)]
            roc_auc_score(labels, torch.cat(scores).numpy())

    seconds = timed(lambda: [one_cell(s) for s in range(n_cells)], device)
    return n_cells / seconds * 3600


def processes_cells_per_hour(procs: int, root: str, device: str, epochs: int,
                             per_proc: int = 2, stacked: bool = False) -> tuple[float, str]:
    """(cells/hour, GPU utilisation) of ``procs`` trial processes sharing the device
    (Ray's fractional GPU), each training ``per_proc`` cells (``stacked``: as one stack)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    barrier = ctx.Barrier(procs + 1)
    workers = [ctx.Process(target=run_cells, args=([p * 1000 + i for i in range(per_proc)],
                                                   root, device, epochs, queue, barrier,
                                                   stacked))
               for p in range(procs)]
    for w in workers:
        w.start()
    barrier.wait()
    sampler = GpuSampler()
    start = time.perf_counter()
    sampler.start()
    done = sum(queue.get() for _ in workers)
    for w in workers:
        w.join()
    return done / (time.perf_counter() - start) * 3600, sampler.mean()


def stacked_cells_per_hour(k: int, root: str, device: str, epochs: int) -> tuple[float, str]:
    from trainables.train_stack import train_stack

    cells = [stack_cell(s, epochs) for s in range(k)]
    list(train_stack(cells[:2], root, device))  # warm-up: data cache, cuDNN
    sampler = GpuSampler()
    sampler.start()
    seconds = timed(lambda: list(train_stack(cells, root, device)), torch.device(device))
    return k / seconds * 3600, sampler.mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--stacks", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--packed", type=int, default=4,
                        help="trials per device in the rows that pack stacked trials")
    args = parser.parse_args()
    device = torch.device(args.device)
    root = tempfile.mkdtemp(prefix="adstudy-bench-")
    make_data(Path(root))
    print(f"# cells/hour on {machine(device)}, LMSE-sized cells, {args.epochs} epochs each")
    print("| how | cells/hour | vs baseline | GPU util |")
    print("|---|---|---|---|")
    sampler = GpuSampler()
    sampler.start()
    base = baseline_cells_per_hour(device, args.epochs)
    print(f"| baseline loop, 1 trial per device | {base:,.0f} | 1.00x | {sampler.mean()} |",
          flush=True)
    for procs in args.procs:
        rate, util = processes_cells_per_hour(procs, root, args.device, args.epochs)
        print(f"| ours, {procs} trial(s) per device | {rate:,.0f} | {rate / base:.2f}x | {util} |",
              flush=True)
    for k in args.stacks:
        rate, util = stacked_cells_per_hour(k, root, args.device, args.epochs)
        print(f"| ours, stacked K={k} in 1 trial | {rate:,.0f} | {rate / base:.2f}x | {util} |",
              flush=True)
    for k in args.stacks:
        rate, util = processes_cells_per_hour(args.packed, root, args.device, args.epochs, k,
                                              stacked=True)
        print(f"| ours, {args.packed} trials per device x stacked K={k} | {rate:,.0f} "
              f"| {rate / base:.2f}x | {util} |", flush=True)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
