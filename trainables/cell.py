"""The cell: one point of a study's grid, its stable identity and its labels.

The bottom of the house: this module imports nothing of the project (nor torch, nor ray),
so every layer may use it; study/cell.py gives it the study layer's name.

A cell is flat and frozen. Parameters of a loss, model, optimizer or dataset are kept as
canonical JSON strings so that a cell hashes, compares and lands in one Parquet row as is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

# Fields that name a registry entry and may carry parameters ({name: ..., param: ...}).
NAMED_FIELDS = ("dataset", "model", "loss", "optimizer")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclasses.dataclass(frozen=True)
class Cell:
    """One trial's full configuration. Every field is semantic: it enters the cell id."""

    study: str
    dataset: str = "digits"
    dataset_params: str = "{}"
    normal_class: int = 0
    protocol: str = "one_class"
    contamination: float = 0.0
    model: str = "cae"
    model_params: str = "{}"
    latent_dim: int = 16
    loss: str = "mse"
    loss_params: str = "{}"
    score: str = "recon_mse"
    optimizer: str = "adam"
    optimizer_params: str = "{}"
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 10
    seed: int = 0
    max_train: int = 0  # 0 = no cap on training images
    max_test: int = 0  # 0 = no cap on test images
    # Share of the training images held out as a validation split (trainables.validation),
    # drawn with a fixed seed; 0 = none. Tuned studies (search: optuna) select on it.
    val_fraction: float = 0.0

    @property
    def cell_id(self) -> str:
        """12 hex digits of the SHA-256 of the cell's canonical JSON (all fields; a field in
        LATER_FIELDS enters only at a value other than its default, and FETCH_PARAMS, which
        say how data is obtained rather than which data, not at all)."""
        data = {
            k: v for k, v in self.to_dict().items()
            if not (k in LATER_FIELDS and v == CELL_DEFAULTS[k])
        }
        for field in FETCH_PARAMS:
            data[f"{field}_params"] = without_fetch_params(field, data[f"{field}_params"])
        return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cell:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def params(self, field: str) -> dict[str, Any]:
        """The decoded parameters of a named field, e.g. ``cell.params('loss')``."""
        return json.loads(getattr(self, f"{field}_params"))

    def label(self, field: str) -> str:
        """A readable name with parameters, e.g. ``lamp(base=l1)`` or ``mse`` (the stored
        ``loss_label`` and ``model_label``)."""
        params = self.params(field)
        if not params:
            return getattr(self, field)
        inner = ",".join(f"{k}={_short(v)}" for k, v in sorted(params.items()))
        return f"{getattr(self, field)}({inner})"


def named_text(value: tuple[str, str]) -> str:
    """A named value (name, params_json) as a study file writes it: ``mse`` or
    ``lamp{"base":"l1"}`` (``adstudy describe`` shows it; a tuned choice is this text)."""
    name, params = value
    return name if params == "{}" else f"{name}{params}"


# A study name becomes one folder name: no separators, no '..', no leading dot (hidden).
# Matched whole (fullmatch): '$' alone would let a trailing newline through ("nl\n").
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_STUDY_NAME = 64  # in a study file; a stored version adds '.vN' (study/identity.py)


def study_name_problem(name: str, limit: int | None = None) -> str:
    """Why ``name`` cannot name a study ('' = it can), at most ``limit`` characters."""
    if STUDY_NAME.fullmatch(name) and ".." not in name and (limit is None or len(name) <= limit):
        return ""
    most = f"1-{limit} " if limit else ""
    return (f"study name {name!r} is not allowed: use {most}letters, digits, '_', '-' or "
            "'.', starting with a letter or digit (it becomes a folder name)")


def without_fetch_params(field: str, params_json: str) -> str:
    """A named field's parameters without those that only say how data is fetched."""
    names = FETCH_PARAMS.get(field, ())
    params = json.loads(params_json)
    if not any(name in params for name in names):
        return params_json
    return canonical_json({k: v for k, v in params.items() if k not in names})


def _short(value: Any) -> str:
    if isinstance(value, list):
        return "-".join(str(v) for v in value)
    return str(value)


# Fields added after cell ids were first stored: at their default they stay out of the
# hash, so every cell stored before they existed keeps its id (and is not run again).
LATER_FIELDS = ("val_fraction",)
# Parameters that say how a dataset is fetched, not what it holds: a cell run with
# download: true is the same cell as one that found the files already there.
FETCH_PARAMS = {"dataset": ("download", "verify")}
CELL_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Cell))
CELL_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(Cell) if f.default is not dataclasses.MISSING
}
CELL_TYPES: dict[str, type] = {
    f.name: {"str": str, "int": int, "float": float}[f.type] for f in dataclasses.fields(Cell)
}
