"""Expected cost of a study: training samples and hours on one GPU and on 2 CPU cores.

An estimate, not a promise. For every cell: epochs x (training images / training
samples/s at the cell's batch size + curve images / evaluation samples/s), since the
trainer scores the test set (or run.curve_test_images of it) after every epoch, plus
one score of every test image when the curves are subsampled, plus a fixed start-up per
trial. The samples/s are measured (``python -m study.cost_measure``) on the real
training loop for the shapes the presets train (RATES); an unmeasured shape takes the
same model's nearest measured shape (else the nearest shape measured), slower by its
pixel count when larger.
On the CPU, trials run side by side, one per core (as a local Ray on 2 cores runs trials
of resources.cpu 1), each at the measured rate: the rates were measured with 2 torch
threads, and for these small convolutions a trial with one thread runs about as fast
(bench/RESULTS.md, issue 21: ~1.35 s a lmse_mnist_smoke cell either way). With the
spec's run and resources (``describe`` passes them), two measured speed-ups are counted:
cells that train as one vmapped stack (study.packing; on a CPU only small images:
trainables.stacking.small_enough_for_cpu) run an epoch like one cell at batch
K x batch_size times STACK_EFFICIENCY (never slower than alone), and trials sharing one
GPU (resources.gpu < 1) run at once, PACKING times faster than one after another
(PACKING_STACKED for trials of stacked cells).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Iterable
from pathlib import Path

from study.cell import Cell
from study.packing import auto_pack_size, pack_cells
from trainables.datasets import DATASETS
from trainables.imageset import Layout
from trainables.protocols import PROTOCOLS
from trainables.stacking import small_enough_for_cpu, stack_key

# Training samples/s by batch size and evaluation samples/s, per (model, C, H, W).
# "gpu": one NVIDIA H100 80GB HBM3, torch 2.11 (cu130); "cpu": 2 cores of that machine's
# CPU (taskset -c 0,1, 2 torch threads), quiet. Measured 2026-11 by study.cost_measure.
RATES: dict[str, dict[tuple, dict]] = {
    "gpu": {
        ("cae", 1, 8, 8): {"train": {1: 185, 4: 840, 16: 4721, 32: 7132, 64: 15569, 128: 33220, 256: 57876, 1024: 231555}, "eval": 1758415},  # noqa: E501
        ("cae", 1, 28, 28): {"train": {1: 243, 4: 920, 16: 3581, 32: 7253, 64: 17519, 128: 33051, 256: 71585, 1024: 266357}, "eval": 1893418},  # noqa: E501
        ("lamp_ae", 1, 28, 28): {"train": {1: 154, 4: 630, 16: 2418, 32: 4810, 64: 7999, 128: 16028, 256: 32092, 1024: 104816}, "eval": 522763},  # noqa: E501
        ("lamp_ae", 3, 128, 128): {"train": {1: 97, 4: 467, 16: 1646, 32: 3530, 64: 6630, 128: 9068, 256: 9813, 1024: 10627}, "eval": 44622},  # noqa: E501
        ("iaead_cae", 1, 32, 32): {"train": {4: 405, 16: 3098, 32: 5306, 64: 9135, 128: 19117, 256: 38198, 1024: 160814}, "eval": 613041},  # noqa: E501
        ("iaead_cae", 3, 32, 32): {"train": {4: 538, 16: 2169, 32: 5496, 64: 8950, 128: 17610, 256: 38263, 1024: 159399}, "eval": 594430},  # noqa: E501
        ("mlp_ae", 1, 2, 2): {"train": {1: 357, 4: 1421, 16: 5670, 32: 10519, 64: 22156, 128: 42694, 256: 92387, 1024: 397512}, "eval": 5545787},  # noqa: E501
        ("mlp_ae", 1, 32, 32): {"train": {1: 344, 4: 1735, 16: 7104, 32: 13069, 64: 22382, 128: 47578, 256: 80998, 1024: 326157}, "eval": 3126230},  # noqa: E501
        ("mlp_ae", 1, 28, 28): {"train": {1: 338, 4: 1421, 16: 5128, 32: 11581, 64: 22296, 128: 40137, 256: 78871, 1024: 276546}, "eval": 2896305},  # noqa: E501
        ("mlp_vae", 1, 28, 28): {"train": {1: 294, 4: 1100, 16: 4400, 32: 7956, 64: 16905, 128: 37686, 256: 81022, 1024: 316973}, "eval": 3005537},  # noqa: E501
    },
    "cpu": {
        ("cae", 1, 8, 8): {"train": {1: 451, 4: 1048, 16: 3923, 32: 7737, 64: 13777, 128: 23334, 256: 31169, 1024: 40274}, "eval": 43870},  # noqa: E501
        ("cae", 1, 28, 28): {"train": {1: 242, 4: 597, 16: 1798, 32: 2551, 64: 3542, 128: 4667, 256: 4457, 1024: 4294}, "eval": 10860},  # noqa: E501
        ("lamp_ae", 1, 28, 28): {"train": {1: 63, 4: 205, 16: 452, 32: 576, 64: 670, 128: 717, 256: 743, 1024: 635}, "eval": 2916},  # noqa: E501
        ("lamp_ae", 3, 128, 128): {"train": {1: 13, 4: 25, 16: 44, 32: 30}, "eval": 109},
        ("iaead_cae", 1, 32, 32): {"train": {4: 114, 16: 309, 32: 510, 64: 541, 128: 522, 256: 520, 1024: 485}, "eval": 2492},  # noqa: E501
        ("iaead_cae", 3, 32, 32): {"train": {4: 160, 16: 393, 32: 539, 64: 530, 128: 492, 256: 503}, "eval": 2429},  # noqa: E501
        ("mlp_ae", 1, 2, 2): {"train": {1: 553, 4: 2186, 16: 8673, 32: 16873, 64: 33961, 128: 67090, 256: 132868, 1024: 483819}, "eval": 596756},  # noqa: E501
        ("mlp_ae", 1, 32, 32): {"train": {1: 527, 4: 2060, 16: 7208, 32: 12760, 64: 22478, 128: 39681, 256: 59875, 1024: 120681}, "eval": 413439},  # noqa: E501
        ("mlp_ae", 1, 28, 28): {"train": {1: 641, 4: 2406, 16: 9081, 32: 17314, 64: 31117, 128: 51989, 256: 78754, 1024: 91601}, "eval": 275428},  # noqa: E501
        ("mlp_vae", 1, 28, 28): {"train": {1: 578, 4: 2159, 16: 7125, 32: 14275, 64: 23947, 128: 44512, 256: 58295, 1024: 91323}, "eval": 258203},  # noqa: E501
    },
}
DEVICES = {"gpu": "one GPU (H100)", "cpu": "2 CPU cores"}
# A stack of K cells at batch b trains at STACK_EFFICIENCY x the rate of one cell at batch
# K x b (bench/RESULTS.md: K=8 at batch 16 and 128; on the GPU the vmapped grouped
# convolutions reach about a fifth of a plain batch's rate, on the CPU all of it).
STACK_EFFICIENCY = {"gpu": 0.2, "cpu": 1.0}
# Cells/hour of n trials sharing one GPU over one trial at a time (bench.cells_per_hour,
# LMSE-sized cells on an H100); more than 8 is counted as 8.
PACKING = {1: 1.0, 2: 1.84, 4: 3.8, 8: 6.34}
# The same for trials that each train a vmapped stack: a stack already keeps the GPU
# busier, so sharing it gains less (bench/gpu_suite.py's pack rows on an H200,
# 2026-11-28: 4 trials 2.38x / 2.05x and 8 trials 2.97x / 2.28x one stacked trial at
# K=16 / K=64; their means here). 2 trials were not measured: counted as 1. With these,
# lmse_mnist_full (240 cells, stacks of 8, 8 trials a GPU) is estimated at 6.2 min; it ran
# in 6.6 (Ray's start included); with PACKING it was estimated at 2.7 min.
PACKING_STACKED = {1: 1.0, 4: 2.2, 8: 2.6}
CPU_CORES = 2  # the "2 CPU cores" the cpu figure is for
# Fixed costs, fitted to studies run here.
CELL_START_S = 0.25  # per trial: Ray scheduling, data (cached per worker), model build
EPOCH_S = 0.0005  # per epoch: the test AUROC, the epoch record
# Start-up, paid once a study: a local Ray comes up (~4-5.5 s), then each trial slot's
# process starts and imports torch (trial processes are reused; the slots start side by
# side). Fitted on 2 idle CPU cores, 2026-11-28: the quickstart (estimated 21 s) ran in
# 22-26 s, lmse_mnist_smoke (estimated 63 s) in 55-60 s.
RAY_START_S = 5.0
TRIAL_PROCESS_S = 5.0
# The sizes of data files the presets name, for a machine that does not hold them (a
# driver whose data lives on the cluster): shared/data/mnist5k.npz, 500 MNIST images a
# digit, split 4:1.
KNOWN_FILES: dict[str, Layout] = {"mnist5k.npz": Layout(4000, 1000, 10, (1, 28, 28))}

@dataclasses.dataclass(frozen=True)
class Cost:
    """A study's estimated work: training samples and seconds on each device."""

    cells: int
    train_samples: float
    seconds: dict[str, float]
    stacked: int = 0  # cells counted as trained in vmapped stacks (on a GPU)
    stacked_on_cpu: int = 0  # ... and on a CPU (small images only)
    trials_per_cpu: int = 1  # trials side by side on the CPU_CORES
    trials_per_gpu: int = 1
    startup_s: float = RAY_START_S + TRIAL_PROCESS_S
    unknown: list[str] = dataclasses.field(default_factory=list)  # files of unknown size

    def lines(self) -> list[str]:
        """Human lines for `adstudy describe`."""
        out = [f"  estimated cost (an estimate from measured samples/s, study/cost.py): "
               f"{self.train_samples:,.0f} training samples in {self.cells} cells"]
        how = {device: f"{n} trials at a time" if n > 1 else "trials one after another"
               for device, n in (("gpu", self.trials_per_gpu), ("cpu", self.trials_per_cpu))}
        stacked = {"gpu": self.stacked, "cpu": self.stacked_on_cpu}
        for device, seconds in self.seconds.items():
            stacks = f", {stacked[device]} cells in vmapped stacks" if stacked[device] else ""
            out.append(f"    {DEVICES[device]:16s} ~{human(seconds + self.startup_s)} "
                       f"(~{human(self.startup_s)} of it start-up), {how[device]}{stacks}")
        if self.unknown:
            out.append(f"    not counted: cells on {', '.join(self.unknown)} (not on this "
                       "machine: size unknown)")
        return out


def human(seconds: float) -> str:
    """'42 s', '12 min', '3.4 h' or '2.1 days'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def data_size(cell: Cell, data_root: str) -> tuple[int, int, tuple[int, int, int]] | None:
    """(training images, test images, image shape) the cell's protocol gives, from the
    dataset's and the protocol's records (an npz file not on this machine: its size in
    KNOWN_FILES, else None)."""
    params, root = cell.params("dataset"), Path(data_root).expanduser()
    layout = DATASETS[cell.dataset].layout(root, params)
    if layout is None:
        layout = KNOWN_FILES.get(Path(str(params.get("path", ""))).name)
    if layout is None:
        return None
    n_train, n_test = PROTOCOLS[cell.protocol].size(layout, cell.contamination,
                                                    cell.max_train, cell.max_test)
    shape = layout.shape
    if cell.model == "iaead_cae":  # padded to at least 32x32 (trainables.preprocess)
        shape = (shape[0], max(shape[1], 32), max(shape[2], 32))
    return int(n_train), int(n_test), tuple(shape)


def rates(device: str, model: str, shape: tuple[int, int, int]) -> tuple[dict, float, float]:
    """(train rates by batch size, eval rate, scale) of the profile nearest to this cell:
    the same model when one is measured within 4x the pixel count, else the profile of
    the nearest pixel count. Rates are multiplied by ``scale`` = measured pixels / these
    pixels when this image is larger; a smaller one is not assumed faster (small models
    are bound by the per-step overhead, not by pixels)."""
    table = RATES[device]
    pixels = math.prod(shape)

    def distance(key: tuple) -> float:
        return abs(math.log(math.prod(key[1:]) / pixels))

    same = [k for k in table if k[0] == model and distance(k) <= math.log(4)]
    key = min(same or table, key=lambda k: (distance(k), k[0] != model, k))
    return table[key]["train"], table[key]["eval"], min(1.0, math.prod(key[1:]) / pixels)


def train_rate(train: dict[int, float], batch_size: int) -> float:
    """Samples/s at ``batch_size``: linear between measured sizes, the nearest beyond."""
    sizes = sorted(train)
    if batch_size <= sizes[0]:
        return train[sizes[0]] * batch_size / sizes[0]  # per-step overhead dominates
    if batch_size >= sizes[-1]:
        return train[sizes[-1]]
    i = bisect.bisect_left(sizes, batch_size)
    lo, hi = sizes[i - 1], sizes[i]
    share = (batch_size - lo) / (hi - lo)
    return train[lo] + share * (train[hi] - train[lo])


def stacks_on(device: str, pack: list[Cell], shape: tuple[int, int, int]) -> bool:
    """Whether the pack trains as one vmapped stack on ``device`` (on a CPU only small
    images, as trainables.run decides)."""
    return (len(pack) > 1 and stack_key(pack[0]) is not None
            and (device == "gpu" or small_enough_for_cpu(shape)))


def pack_seconds(pack: list[Cell], size: tuple[int, int, tuple[int, int, int]],
                 device: str, curve_images: int, stacks: bool) -> float:
    """Seconds of one trial's pack on ``device``: its start, then each cell's epochs
    (training, and scoring the curve images) and its final score of every test image;
    ``stacks``: the pack trains as one stack there (stacks_on)."""
    n_train, n_test, shape = size
    train, evaluate, scale = rates(device, pack[0].model, shape)
    curve = min(curve_images, n_test) if curve_images else n_test
    final = n_test if curve_images else 0  # scored once more, every test image
    seconds = CELL_START_S
    for cell in pack:
        rate = train_rate(train, cell.batch_size)
        if stacks:  # per cell: the stack's samples/s shared by its K cells
            rate = max(rate, STACK_EFFICIENCY[device]
                       * train_rate(train, len(pack) * cell.batch_size))
        per_epoch = n_train / (rate * scale) + curve / (evaluate * scale)
        seconds += cell.epochs * (per_epoch + EPOCH_S) + final / (evaluate * scale)
    return seconds


def shared_gpu(factors: dict[int, float], trials: int) -> float:
    """How much faster ``trials`` trials sharing a GPU run than one at a time: the factor
    of the largest measured count not above ``trials``."""
    return factors[max(k for k in factors if k <= trials)]


def estimate(cells: Iterable[Cell], data_root: str = "~/.cache/adstudy",
             cells_per_trial: int = 1, gpu_share: float = 0.0,
             curve_images: int = 0, cpus_per_trial: float = 1.0) -> Cost:
    """The expected cost of running ``cells`` (see the module doc).

    Args:
        cells_per_trial: as run.cells_per_trial (0: auto); 1 counts every cell alone.
        gpu_share: resources.gpu; 1 / gpu_share trials share the GPU at once.
        curve_images: as run.curve_test_images (0: every test image every epoch).
        cpus_per_trial: resources.cpu; CPU_CORES / cpus_per_trial trials run at once.
    """
    cells = list(cells)
    packed = max(1, int(1 / gpu_share)) if 0 < gpu_share < 1 else 1
    size = cells_per_trial or auto_pack_size(len(cells), packed)
    packs = pack_cells(cells, size) if size > 1 else [[c] for c in cells]
    # the GPU seconds of stacked packs apart: they share the GPU at PACKING_STACKED
    seconds = {device: 0.0 for device in RATES} | {"gpu stacked": 0.0}
    samples, stacked, stacked_on_cpu = 0.0, 0, 0
    unknown: list[str] = []
    for pack in packs:
        sizes = data_size(pack[0], data_root)
        if sizes is None:
            if pack[0].label("dataset") not in unknown:
                unknown.append(pack[0].label("dataset"))
            continue
        stacks = {device: stacks_on(device, pack, sizes[2]) for device in RATES}
        stacked += len(pack) if stacks["gpu"] else 0
        stacked_on_cpu += len(pack) if stacks["cpu"] else 0
        samples += sum(cell.epochs * sizes[0] for cell in pack)
        for device in RATES:
            key = "gpu stacked" if device == "gpu" and stacks["gpu"] else device
            seconds[key] += pack_seconds(pack, sizes, device, curve_images, stacks[device])
    packed = max(1, min(packed, len(packs)))  # no more trials at once than there are
    seconds["gpu"] = (seconds["gpu"] / shared_gpu(PACKING, packed)
                      + seconds.pop("gpu stacked") / shared_gpu(PACKING_STACKED, packed))
    on_cpu = max(1, min(len(packs), int(CPU_CORES // max(cpus_per_trial, 1.0))))
    seconds["cpu"] /= on_cpu
    return Cost(cells=len(cells), train_samples=samples, seconds=seconds, stacked=stacked,
                stacked_on_cpu=stacked_on_cpu, trials_per_cpu=on_cpu,
                trials_per_gpu=packed, startup_s=RAY_START_S + TRIAL_PROCESS_S if cells else 0,
                unknown=unknown)
