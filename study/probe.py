"""Trying each distinct model and loss on its dataset's image shape, and each optimizer,
before a study runs, so a combination that cannot train fails at submit, not in trial 900.

Image shapes come from each dataset's record (DatasetInfo.layout) without reading the
data (a driver on a cluster need not hold it); ``npz`` reads only the header of its
``x`` array, when the file is there. The probe builds each distinct model for its shape
and back-propagates a reconstruction loss through it on two random images, in the cell's
batches (a batch of one image, for example, is not something BatchNorm can train on);
runs each loss and score on that model's output, both built as the trainer builds them
(trainables.assemble); and steps each optimizer once. Distinct models, losses on them, and
optimizers: a sum, not a product.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch

from study.cell import Cell
from study.errors import SpecError
from study.spec_values import raise_all
from trainables.assemble import Training, build_loss, build_model
from trainables.datasets import image_shape
from trainables.imageset import Shape
from trainables.models import Output
from trainables.optimizers import build_optimizer
from trainables.preprocess import preprocess
from trainables.train import score_test

PROBE_IMAGES = 2  # images the probe trains on: two, so BatchNorm sees a batch of two


@dataclasses.dataclass
class ProbedModel:
    """A model built for a shape, its two images (as a Training) and their train-mode
    output (detached leaves, so each loss probed on it back-propagates to them only)."""

    training: Training
    out: Output


def model_key(cell: Cell, shape: Shape) -> tuple:
    """What decides whether a model trains on images of ``shape`` (not lr, seed, class,
    epochs, nor which files hold the images): batches of one image are their own case."""
    return (shape, cell.model, cell.model_params, cell.latent_dim,
            min(cell.batch_size, PROBE_IMAGES))


def probe_cells(cells: Iterable[Cell], root: str | None) -> None:
    """Raises one SpecError naming every problem probe_problems finds."""
    raise_all(probe_problems(cells, root))


def probe_problems(cells: Iterable[Cell], root: str | None) -> list[str]:
    """Probes every distinct optimizer, model_key, and loss and score on each model.

    Args:
        cells: cells whose fields already passed study.checks.check_field.
        root: the data root, for npz files (None: npz cells are not probed).
    Returns:
        Each problem once, naming the cell's model, loss, score and batch size, the
        dataset and its image shape (or the optimizer and lr), and the error the trainer
        raised; a model that cannot train is not tried with its losses.
    """
    shapes: dict[tuple[str, str], Shape | None] = {}
    models: dict[tuple, ProbedModel | None] = {}
    seen: set[tuple] = set()
    found: list[str] = []

    def note(step: Callable[[], Any]) -> Any:
        try:
            return step()
        except SpecError as err:
            if str(err) not in found:
                found.append(str(err))
            return None

    with _one_thread_own_rng():
        for cell in cells:
            dataset = (cell.dataset, cell.dataset_params)
            if dataset not in shapes:
                shapes[dataset] = image_shape(cell, root)
            optimizer = (cell.optimizer, cell.optimizer_params, cell.lr)
            if optimizer not in seen:
                seen.add(optimizer)
                note(functools.partial(probe_optimizer, cell))
            shape = shapes[dataset]
            if shape is None:
                continue
            key = model_key(cell, shape)
            if key not in models:
                models[key] = note(functools.partial(
                    _named, cell, shape, functools.partial(run_model, cell, shape)))
            loss = (key, cell.loss, cell.loss_params, cell.score)
            if models[key] is not None and loss not in seen:
                seen.add(loss)
                note(functools.partial(_named, cell, shape, functools.partial(
                    run_loss_and_score, cell, models[key])))
    return found


def probe_optimizer(cell: Cell) -> None:
    """Builds the cell's optimizer and schedule on one parameter and steps them once."""
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


def run_model(cell: Cell, shape: Shape) -> ProbedModel:
    """Builds the cell's model for PROBE_IMAGES random images of ``shape`` (preprocessed
    for it) and takes one backward pass of the reconstruction MSE in the cell's batches."""
    images = np.random.default_rng(0).random((PROBE_IMAGES, *shape), dtype=np.float32)
    x = torch.tensor(preprocess(cell.model, images))
    model = build_model(cell, x.shape[1:])
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
    training = Training(model=model, loss_fn=None, optimizer=None, schedule=None, train_x=x,
                        test_x=x, test_y=np.array([0, 1]), generator=None)
    return ProbedModel(training=training, out=Output(**leaves))


def run_loss_and_score(cell: Cell, probed: ProbedModel) -> None:
    """The cell's loss on the model's output, built as the trainer builds it
    (trainables.assemble: trainer keywords, loss state), back-propagated; then its test
    score."""
    loss_fn, state = build_loss(cell)
    if state is not None:
        state.after_epoch(0, lambda: probed.out.z.detach())
    per_sample = loss_fn(probed.out, probed.training.train_x)
    if tuple(per_sample.shape) != (PROBE_IMAGES,):
        raise ValueError(f"loss {cell.loss!r} returned shape {list(per_sample.shape)}, "
                         f"not one value per image [{PROBE_IMAGES}]")
    per_sample.mean().backward()  # a non-finite value is a result (diverged), not an error
    if state is not None:
        state.after_step(probed.out.z.detach())
    score_test(probed.training, cell.score)


@contextlib.contextmanager
def _one_thread_own_rng() -> Iterator[None]:
    """One torch thread (tiny tensors: several times faster) and the caller's torch RNG
    left as it was."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(threads)
