"""Trying each distinct model and loss on its dataset's image shape, and each optimizer,
before a study runs, so a combination that cannot train fails at submit, not in trial 900.

Image shapes come from IMAGE_SHAPES without reading the data (a driver on a cluster need
not hold it); ``npz`` reads only the header of its ``x`` array, when the file is there.
The probe builds the cell's model, loss and optimizer (trainables.train.build_trial) and
trains one epoch on two random images of that shape, in the cell's batches (a batch of
one image, for example, is not something BatchNorm can train on), then scores them.
"""

from __future__ import annotations

import functools
import inspect
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from study.cell import Cell
from study.errors import SpecError
from trainables.datasets import DATASETS, to_unit_nchw

Shape = tuple[int, int, int]  # C, H, W
PROBE_IMAGES = 2  # images the probe trains on: two, so BatchNorm sees a batch of two


def _default(dataset: str, params: dict, name: str):
    """A loader parameter as the loader will see it: the spec's value or its default."""
    if name in params:
        return params[name]
    return inspect.signature(DATASETS[dataset]).parameters[name].default


def lines_shape(root: Path, params: dict) -> Shape:
    size = int(_default("lines", params, "size"))
    return (1, size, size)


def mvtec_shape(root: Path, params: dict) -> Shape:
    size = int(_default("mvtec", params, "size"))
    return (int(_default("mvtec", params, "channels")), size, size)


NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}


def npz_shape(root: Path, params: dict) -> Shape | None:
    """The shape of one image of the npz file's ``x`` from its .npy header (no pixels read);
    None when the file is not on this machine or not a readable npz."""
    path = Path(str(params.get("path", ""))).expanduser()
    path = path if path.is_absolute() else Path(root).expanduser() / path
    try:
        with zipfile.ZipFile(path) as archive, archive.open("x.npy") as member:
            read = NPY_HEADERS.get(np.lib.format.read_magic(member))
            if read is None:
                return None
            shape, _, dtype = read(member)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None  # the trial reports it, with the loader's own message
    if len(shape) not in (3, 4):
        return None
    one = np.zeros((1, *shape[1:]), dtype=dtype)  # to_unit_nchw decides the layout
    return tuple(to_unit_nchw(one).shape[1:])


def _fixed(shape: Shape) -> Callable[[Path, dict], Shape]:
    return lambda root, params: shape


# Dataset -> (data root, params) -> the [C, H, W] of its images (None: unknown here).
IMAGE_SHAPES: dict[str, Callable[[Path, dict], Shape | None]] = {
    "digits": _fixed((1, 8, 8)),
    "lines": lines_shape,
    "lines2x2": _fixed((1, 2, 2)),
    "npz": npz_shape,
    "mnist": _fixed((1, 28, 28)),
    "fashion_mnist": _fixed((1, 28, 28)),
    "svhn": _fixed((3, 32, 32)),
    "cifar10": _fixed((3, 32, 32)),
    "cifar100": _fixed((3, 32, 32)),
    "mvtec": mvtec_shape,
}


def probe_key(cell: Cell, shape: Shape) -> tuple:
    """What decides whether a cell can train on images of ``shape`` (not lr, seed, class,
    epochs, nor which files hold the images; optimizers are probed on their own)."""
    return (
        shape, cell.model, cell.model_params, cell.latent_dim, cell.loss, cell.loss_params,
        cell.score, min(cell.batch_size, PROBE_IMAGES),
    )


def probe_cells(cells: Iterable[Cell], root: str | None) -> None:
    """Probes every distinct probe_key once, and every distinct optimizer (see the module
    doc).

    Args:
        cells: cells whose fields already passed validate.check_field.
        root: the data root, for npz files (None: npz cells are not probed).
    Raises:
        SpecError: naming the cell's model, loss, optimizer and batch size, the dataset
            and its image shape, and the error the trainer raised.
    """
    shapes: dict[tuple[str, str], Shape | None] = {}
    seen: set[tuple] = set()
    for cell in cells:
        dataset = (cell.dataset, cell.dataset_params)
        if dataset not in shapes:
            shapes[dataset] = image_shape(cell, root)
        optimizer = (cell.optimizer, cell.optimizer_params, cell.lr)
        if optimizer not in seen:
            seen.add(optimizer)
            probe_optimizer(cell)
        shape = shapes[dataset]
        if shape is not None and probe_key(cell, shape) not in seen:
            seen.add(probe_key(cell, shape))
            probe(cell, shape)


def image_shape(cell: Cell, root: str | None) -> Shape | None:
    find = IMAGE_SHAPES.get(cell.dataset)
    if find is None or (cell.dataset == "npz" and root is None):
        return None
    return find(Path(root or "."), cell.params("dataset"))


def probe_optimizer(cell: Cell) -> None:
    """Builds the cell's optimizer and schedule on one parameter and steps them once."""
    torch, _ = _torch_modules()
    from trainables.optimizers import build_optimizer

    weight = torch.nn.Parameter(torch.ones(4))
    try:
        optimizer, schedule = build_optimizer(
            cell.optimizer, [weight], cell.lr, cell.params("optimizer")
        )
        weight.sum().backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
    except Exception as err:  # noqa: BLE001 - whatever the trial would hit, named here
        raise SpecError(
            f"optimizer {cell.label('optimizer')!r} with lr {cell.lr} cannot run: "
            f"{type(err).__name__}: {err}"
        ) from err


def probe(cell: Cell, shape: Shape) -> None:
    """Trains ``cell`` for one epoch on PROBE_IMAGES random images of ``shape`` (CPU)."""
    try:
        _train_once(cell, shape)
    except Exception as err:  # noqa: BLE001 - whatever the trial would hit, named here
        raise SpecError(
            f"model {cell.label('model')!r} (latent_dim {cell.latent_dim}) with loss "
            f"{cell.label('loss')!r}, score {cell.score!r} and batch_size "
            f"{cell.batch_size} cannot train on dataset "
            f"{cell.label('dataset')!r} (images [C, H, W] = {list(shape)}): "
            f"{type(err).__name__}: {err}"
        ) from err


@functools.lru_cache(maxsize=1)
def _torch_modules():
    import torch

    from trainables import train

    return torch, train


def _train_once(cell: Cell, shape: Shape) -> None:
    torch, train = _torch_modules()
    from trainables.preprocess import preprocess
    from trainables.protocols import Task

    images = np.random.default_rng(0).random((PROBE_IMAGES, *shape), dtype=np.float32)
    x = preprocess(cell.model, images)
    task = Task(train_x=x, test_x=x, test_y=np.array([0, 1]))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is several times faster
    try:
        with torch.random.fork_rng(devices=[]):  # the driver's torch RNG stays as it was
            trial = train.build_trial(cell, task, torch.device("cpu"))
            train.end_of_epoch(trial, 0)
            try:
                train.train_epoch(trial, cell.batch_size, 1)
            except train.Diverged:
                return  # a loss that diverges is a result (status diverged), not bad input
            train.end_of_epoch(trial, 1)
            train.score_test(trial, cell.score)
    finally:
        torch.set_num_threads(threads)
