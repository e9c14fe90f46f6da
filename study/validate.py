"""Checks a study's cells against the registries before anything runs.

Every error names the field, the value and the choices. Imports the trainables registries
(and so torch), but builds no model and reads no data.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable

from study.cell import Cell
from study.errors import SpecError
from study.spec import did_you_mean
from trainables.datasets import DATASET_CLASSES, DATASETS
from trainables.losses import LOSSES
from trainables.models import MODELS
from trainables.optimizers import OPTIMIZERS, SCHEDULE_PARAMS
from trainables.protocols import PROTOCOLS
from trainables.scores import SCORES

REGISTRIES: dict[str, dict[str, Callable]] = {
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


def validate_cells(cells: Iterable[Cell]) -> None:
    """Raises SpecError for the first cell field no trainer could run."""
    seen: set[tuple] = set()
    for cell in cells:
        for field in (*REGISTRIES, *POSITIVE, *NON_NEGATIVE, "contamination", "normal_class"):
            key = (field, getattr(cell, field), cell.dataset if field == "normal_class" else "")
            key += (getattr(cell, f"{field}_params", ""),)
            if key not in seen:
                seen.add(key)
                check_field(cell, field)


def check_field(cell: Cell, field: str) -> None:
    value = getattr(cell, field)
    if field in REGISTRIES:
        registry = REGISTRIES[field]
        if value not in registry:
            raise SpecError(f"unknown {field} {value!r}{did_you_mean(value, sorted(registry))}")
        if field in SUPPLIED:
            check_params(field, value, registry[value], cell.params(field))
    elif field in POSITIVE and not value > 0:
        raise SpecError(f"{field}: {value!r} is not allowed; it must be > 0")
    elif field in NON_NEGATIVE and value < 0:
        raise SpecError(f"{field}: {value!r} is not allowed; it must be >= 0")
    elif field == "contamination" and not 0 <= value < 0.5:
        raise SpecError(f"contamination: {value!r} is not allowed; it must be in [0, 0.5)")
    elif field == "normal_class":
        classes = DATASET_CLASSES.get(cell.dataset)
        if classes is not None and value not in classes:
            raise SpecError(
                f"normal_class: {value!r} is not a class of dataset {cell.dataset!r}; "
                f"choose from {list(classes)}"
            )


def check_params(field: str, name: str, fn: Callable, params: dict) -> None:
    """Parameters must be keyword arguments of the registry entry (or the schedule's)."""
    signature = inspect.signature(fn)
    accepted = [p for p in list(signature.parameters)[SUPPLIED[field] :] if p != "_"]
    if field == "optimizer":
        accepted += list(SCHEDULE_PARAMS)
    for param in params:
        if param not in accepted:
            raise SpecError(
                f"{field} {name!r} has no parameter {param!r}; "
                f"choose from {sorted(accepted) or 'none'}"
            )
