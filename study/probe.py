"""Trying each distinct model and loss on its dataset's image shape, and each optimizer,
before a study runs, so a combination that cannot train fails at submit, not in trial 900.

Image shapes come from IMAGE_SHAPES without reading the data (a driver on a cluster need
not hold it); ``npz`` reads only the header of its ``x`` array, when the file is there.
The probe builds each distinct model for its shape and back-propagates a reconstruction
loss through it on two random images, in the cell's batches (a batch of one image, for
example, is not something BatchNorm can train on); runs each loss and score on that
model's output, the loss built as trainables.train.build_trial builds it; and steps each
optimizer once. Distinct models, losses on them, and optimizers: a sum, not a product.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

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


@dataclasses.dataclass
class Probe:
    """A model built for a shape, its two images (as a Trial) and their train-mode output
    (detached leaves, so each loss probed on it back-propagates to them only)."""

    trial: Any
    out: Any


def model_key(cell: Cell, shape: Shape) -> tuple:
    """What decides whether a model trains on images of ``shape`` (not lr, seed, class,
    epochs, nor which files hold the images): batches of one image are their own case."""
    return (shape, cell.model, cell.model_params, cell.latent_dim,
            min(cell.batch_size, PROBE_IMAGES))


def probe_cells(cells: Iterable[Cell], root: str | None) -> None:
    """Probes every distinct optimizer, model_key, and loss and score on each model.

    Args:
        cells: cells whose fields already passed validate.check_field.
        root: the data root, for npz files (None: npz cells are not probed).
    Raises:
        SpecError: naming the cell's model, loss, score and batch size, the dataset and
            its image shape (or the optimizer and lr), and the error the trainer raised.
    """
    shapes: dict[tuple[str, str], Shape | None] = {}
    models: dict[tuple, Probe] = {}
    seen: set[tuple] = set()
    with _one_thread_own_rng():
        for cell in cells:
            dataset = (cell.dataset, cell.dataset_params)
            if dataset not in shapes:
                shapes[dataset] = image_shape(cell, root)
            optimizer = (cell.optimizer, cell.optimizer_params, cell.lr)
            if optimizer not in seen:
                seen.add(optimizer)
                probe_optimizer(cell)
            shape = shapes[dataset]
            if shape is None:
                continue
            key = model_key(cell, shape)
            if key not in models:
                models[key] = _named(cell, shape, functools.partial(run_model, cell, shape))
            if (key, cell.loss, cell.loss_params, cell.score) not in seen:
                seen.add((key, cell.loss, cell.loss_params, cell.score))
                _named(cell, shape, functools.partial(run_loss_and_score, cell, models[key]))


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


def _named(cell: Cell, shape: Shape, step: Callable[[], Any]) -> Any:
    """``step()``, with any error it raises named by the cell's fields and shape."""
    try:
        return step()
    except Exception as err:  # noqa: BLE001 - whatever the trial would hit, named here
        raise SpecError(
            f"model {cell.label('model')!r} (latent_dim {cell.latent_dim}) with loss "
            f"{cell.label('loss')!r}, score {cell.score!r} and batch_size "
            f"{cell.batch_size} cannot train on dataset "
            f"{cell.label('dataset')!r} (images [C, H, W] = {list(shape)}): "
            f"{type(err).__name__}: {err}"
        ) from err


def run_model(cell: Cell, shape: Shape) -> Probe:
    """Builds the cell's model for PROBE_IMAGES random images of ``shape`` (preprocessed
    for it) and takes one backward pass of the reconstruction MSE in the cell's batches."""
    torch, train = _torch_modules()
    from trainables.models import MODELS, Output
    from trainables.preprocess import preprocess

    images = np.random.default_rng(0).random((PROBE_IMAGES, *shape), dtype=np.float32)
    x = torch.tensor(preprocess(cell.model, images))
    model = MODELS[cell.model](tuple(x.shape[1:]), cell.latent_dim, **cell.params("model"))
    model.train()
    batches = x.split(min(cell.batch_size, PROBE_IMAGES))
    outs = [model(batch) for batch in batches]
    for out, batch in zip(outs, batches, strict=True):
        if out.recon.shape != batch.shape:
            raise ValueError(f"the reconstruction is {list(out.recon.shape[1:])}, the input "
                             f"{list(batch.shape[1:])}")
    sum(((o.recon - b) ** 2).mean() for o, b in zip(outs, batches, strict=True)).backward()
    out = model(x)
    leaves = {f.name: getattr(out, f.name) for f in dataclasses.fields(Output)}
    leaves = {k: None if v is None else v.detach().requires_grad_() for k, v in leaves.items()}
    trial = train.Trial(model=model, loss_fn=None, optimizer=None, schedule=None, train_x=x,
                        test_x=x, test_y=np.array([0, 1]), generator=None)
    return Probe(trial=trial, out=Output(**leaves))


def run_loss_and_score(cell: Cell, probe: Probe) -> None:
    """The cell's loss on the model's output, built as trainables.train.build_trial builds
    it (trainer keywords, loss state), back-propagated; then its test score."""
    _, train = _torch_modules()
    from trainables.losses import LOSSES, loss_keywords
    from trainables.preprocess import VALUE_RANGE
    from trainables.svdd import LOSS_STATES

    params = cell.params("loss")
    state = LOSS_STATES[cell.loss](**params) if cell.loss in LOSS_STATES else None
    if state is not None:
        state.after_epoch(0, lambda: probe.out.z.detach())
    supplied = {"value_range": VALUE_RANGE[cell.model], "state": state}
    params |= {k: supplied[k] for k in loss_keywords(cell.loss)}
    per_sample = LOSSES[cell.loss](probe.out, probe.trial.train_x, **params)
    if tuple(per_sample.shape) != (PROBE_IMAGES,):
        raise ValueError(f"loss {cell.loss!r} returned shape {list(per_sample.shape)}, "
                         f"not one value per image [{PROBE_IMAGES}]")
    per_sample.mean().backward()  # a non-finite value is a result (diverged), not an error
    if state is not None:
        state.after_step(probe.out.z.detach())
    train.score_test(probe.trial, cell.score)


@functools.lru_cache(maxsize=1)
def _torch_modules():
    import torch

    from trainables import train

    return torch, train


@contextlib.contextmanager
def _one_thread_own_rng() -> Iterator[None]:
    """One torch thread (tiny tensors: several times faster) and the caller's torch RNG
    left as it was."""
    torch, _ = _torch_modules()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(threads)
