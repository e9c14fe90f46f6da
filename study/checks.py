"""Checks a study's cells against the registries before anything runs.

Every error names the field, the value and the choices. Imports the trainables registries
(and so torch) and reads no images: given the data root, it only looks for the files of
datasets that read files (each DatasetInfo's ``files``); it runs each distinct loss once
on two random 8x8 tensors to try its parameter values (built as the trainer builds it,
trainables.assemble), and trains each distinct model/loss/optimizer for one step on two
random images of its dataset's shape (study.probe).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable

import torch

from study.cell import Cell
from study.datafiles import missing_files
from study.errors import SpecError
from study.probe import probe_problems
from study.spec_values import did_you_mean, raise_all
from trainables.assemble import build_loss
from trainables.datasets import DATASETS
from trainables.losses import LOSSES, TRAINER_KEYWORDS
from trainables.models import MODELS, Output
from trainables.optimizers import OPTIMIZERS, SCHEDULE_PARAMS
from trainables.preprocess import PREPROCESS
from trainables.protocols import PROTOCOLS
from trainables.scores import SCORES

REGISTRIES: dict[str, dict[str, object]] = {
    "dataset": DATASETS,
    "model": MODELS,
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
    "protocol": PROTOCOLS,
    "score": SCORES,
}
# Positional arguments the trainer supplies itself; the rest are user parameters.
SUPPLIED = {
    "dataset": 1,  # root
    "model": 2,  # image_shape, latent_dim
    "loss": 2,  # out, target
    "optimizer": 2,  # params, lr
}
POSITIVE = ("lr", "batch_size", "epochs", "latent_dim")
NON_NEGATIVE = ("max_train", "max_test", "seed")
# Fields whose check depends on another field.
CONTEXT = {"normal_class": "dataset", "contamination": "protocol"}


def check_cells(
    cells: Iterable[Cell], data_root: str | None = None, shape_root: str | None = None
) -> None:
    """Raises one SpecError naming every problem of the cells: each field no trainer
    could run, each dataset's missing files, and each model/loss/optimizer that cannot
    train on its dataset's image shape (study.probe).

    Args:
        cells: the study's cells.
        data_root: where the datasets' files are looked for (the spec's run.data_root);
            None skips the file checks.
        shape_root: where npz files are looked for to read their image shape (default:
            data_root); a file not found there is not probed (its trial reports it).
    """
    cells = list(cells)
    found, good = field_problems(cells)
    if data_root is not None:
        found += missing_files(cells, data_root)
    found += probe_problems(good, shape_root if shape_root is not None else data_root)
    raise_all(found)


def cell_problems(cells: list[Cell], shape_root: str | None) -> list[str]:
    """Every field problem, then every probe problem of the cells whose fields passed
    (each message once); the data files are study.datafiles' concern."""
    fields, good = field_problems(cells)
    return fields + probe_problems(good, shape_root)


def field_problems(cells: list[Cell]) -> tuple[list[str], list[Cell]]:
    """(every field problem once, the cells without one). A field value is checked once
    per distinct (field, value, context, parameters)."""
    checked: dict[tuple, str] = {}
    good = []
    for cell in cells:
        bad = False
        for key in _keys(cell):
            if key not in checked:
                checked[key] = _problem(cell, key[0])
            bad = bad or bool(checked[key])
        if not bad:
            good.append(cell)
    return list(dict.fromkeys(p for p in checked.values() if p)), good


def _keys(cell: Cell) -> list[tuple]:
    keys = []
    for field in (*REGISTRIES, *POSITIVE, *NON_NEGATIVE, *CONTEXT):
        context = getattr(cell, CONTEXT[field]) if field in CONTEXT else ""
        keys.append((field, getattr(cell, field), context,
                     getattr(cell, f"{field}_params", "")))
    return keys


def _problem(cell: Cell, field: str) -> str:
    try:
        check_field(cell, field)
    except SpecError as err:
        return str(err)
    return ""


def check_field(cell: Cell, field: str) -> None:
    value = getattr(cell, field)
    if field in REGISTRIES:
        registry = REGISTRIES[field]
        if value not in registry:
            raise SpecError(f"unknown {field} {value!r}{did_you_mean(value, sorted(registry))}")
        if field in SUPPLIED:
            entry = registry[value]
            fn = entry.loader if field == "dataset" else entry
            check_params(field, value, fn, cell.params(field))
        if field == "model" and value not in PREPROCESS:
            raise SpecError(f"model {value!r} has no preprocessing entry in PREPROCESS")
        if field == "loss":
            probe_loss(cell)
    elif field in POSITIVE and not value > 0:
        raise SpecError(f"{field}: {value!r} is not allowed; it must be > 0")
    elif field in NON_NEGATIVE and value < 0:
        raise SpecError(f"{field}: {value!r} is not allowed; it must be >= 0")
    elif field == "contamination" and not 0 <= value < 0.5:
        raise SpecError(f"contamination: {value!r} is not allowed; it must be in [0, 0.5)")
    elif field == "contamination" and cell.protocol == "contaminated" and not value > 0:
        raise SpecError(
            f"contamination: {value!r} is not allowed with protocol 'contaminated'; it must "
            "be in (0, 0.5), e.g. 0.05 .. 0.25 as IAEAD"
        )
    elif field == "normal_class" and cell.dataset in DATASETS:  # else: the dataset's problem
        classes = DATASETS[cell.dataset].classes
        if classes is not None and value not in classes:
            raise SpecError(
                f"normal_class: {value!r} is not a class of dataset {cell.dataset!r}; "
                f"choose from {list(classes)}"
            )


def check_params(field: str, name: str, fn: Callable, params: dict) -> None:
    """Parameters must be keyword arguments of the registry entry (or the schedule's)."""
    signature = inspect.signature(fn)
    accepted = [
        p for p in list(signature.parameters)[SUPPLIED[field] :]
        if p != "_" and p not in TRAINER_KEYWORDS
    ]
    if field == "optimizer":
        accepted += list(SCHEDULE_PARAMS)
    for param in params:
        if param not in accepted:
            raise SpecError(
                f"{field} {name!r} has no parameter {param!r}; "
                f"choose from {sorted(accepted) or 'none'}"
            )


def probe_loss(cell: Cell) -> None:
    """Runs the cell's loss once on two random 8x8 images, so a parameter value it rejects
    (lamp's base, iaead's nu, ...) fails here, naming the value and the choices."""
    gen = torch.Generator().manual_seed(0)
    recon, target = torch.rand(2, 1, 8, 8, generator=gen), torch.rand(2, 1, 8, 8, generator=gen)
    out = Output(recon=recon, z=torch.rand(2, 3, generator=gen), mu=torch.zeros(2, 3),
                 logvar=torch.zeros(2, 3))
    try:
        loss_fn, _ = build_loss(cell)
        loss_fn(out, target)
    except (ValueError, TypeError) as err:
        raise SpecError(f"loss {cell.loss!r}: {err}") from err
