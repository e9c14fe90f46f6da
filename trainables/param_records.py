"""The parameters of every registry entry (datasets, models, losses, optimizers): each
one's default, kind and allowed range, and the normal form of a named value's parameters.
No torch here: the driver reads them (study/spec_values.py) to check a study file's
parameters and to normalise them before any cell id is computed.

    PARAMS[field][name][param] -> Param      e.g. PARAMS["loss"]["lmse"]["eps"]

Normal form: a parameter written at its default is left out (``{name: lamp, base: l2}``
is the cell ``lamp``), so one configuration has one cell id; a cell that writes no
default keeps the id it always had. One exception keeps the ids of presets stored before
this normal form existed: a Param with ``kept_with`` is written out, at its default too,
whenever that other parameter is set to a value other than its default: ``{name: sgd,
step_every: 50}`` is ``{name: sgd, step_every: 50, gamma: 0.5}`` (the IAEAD presets'
form) and ``{name: mlp_ae, init: glorot}`` is ``{name: mlp_ae, hidden: [2], init:
glorot}`` (the AE-vs-VAE presets'), while ``{name: mlp_ae, hidden: [2]}`` is ``mlp_ae``.
Cells written in the other form before (``{name: sgd, step_every: 50}`` without gamma)
have a new id; a store holding such cells is refused (study/legacy_params.py).

Every record agrees with its entry's signature, names and defaults (tests/test_params.py),
so the functions keep their defaults and the records repeat them. Loss parameters carry
their full allowed range (checked when a study file is read); of the other registries'
parameters the kind is checked here and the value by the entry itself when the driver
probes it (study/checks.py), except for the parameters added with these records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainables.params import Param, choice, flag, ints, number, text, whole

EPS = number(1e-3, 0, 1, open_low=True, open_high=True)
WINDOW = whole(11, 1, odd=True)
PADDING = choice("same", "same", "valid")
MAX_OVER = ("batch", "sample", "none")
EPS_MODE = choice("clamp", "clamp", "add")

LOSS_PARAMS: dict[str, dict[str, Param]] = {
    "mse": {}, "mae": {}, "l1": {}, "msle": {},
    "ssim": {"window": WINDOW, "padding": PADDING},
    "lmse": {"max_over": choice("none", *MAX_OVER), "detach": flag(True), "eps": EPS,
             "eps_mode": EPS_MODE},
    "lamp": {"base": choice("l2", "l2", "l1", "ssim"), "reduction": choice("sum", "sum", "mean"),
             "max_over": choice("batch", *MAX_OVER), "detach": flag(True), "eps": EPS,
             "eps_mode": EPS_MODE, "window": WINDOW, "padding": PADDING},
    "vae": {"beta": number(1.0, 0), "kl": choice("mean", "mean", "keras")},
    "iaead": {"lam": number(5e-5, 0), "nu": number(1.0, 0, 1, open_low=True),
              "warmup": whole(20, 0)},
}

MLP = {"hidden": ints((2,), kept_with="init"), "init": Param("torch", "str")}
MODEL_PARAMS: dict[str, dict[str, Param]] = {
    "cae": {"channels": ints((16, 32, 64))},
    "lamp_ae": {"widths": ints(None, nullable=True), "kernel_size": whole(3),
                "negative_slope": number(0.2), "patches": whole(1, 1)},
    "iaead_cae": {"width": whole(64), "init_gain": number(0.02)},
    "mlp_ae": MLP,
    "mlp_vae": MLP | {"sampling": choice("logvar", "logvar", "log_sigma")},
}

SCHEDULE = {"step_every": whole(0), "gamma": number(0.5, kept_with="step_every")}
OPTIMIZER_PARAMS: dict[str, dict[str, Param]] = {
    "sgd": {"momentum": number(0.0), "weight_decay": number(0.0)} | SCHEDULE,
    "rmsprop": {"alpha": number(0.99), "momentum": number(0.0), "eps": number(1e-8),
                "weight_decay": number(0.0)} | SCHEDULE,
    "adam": {"beta1": number(0.9), "beta2": number(0.999), "eps": number(1e-8),
             "weight_decay": number(0.0)} | SCHEDULE,
}

BINARIZE = number(0.0, 0, 1, open_high=True)  # 0: gray images as they are
VISION = {"download": flag(False), "verify": flag(True), "binarize": BINARIZE,
          "splits": choice("both", "both", "train")}
DATASET_PARAMS: dict[str, dict[str, Param]] = {
    "digits": {"test_fraction": number(1 / 3)},
    "lines": {"n_train": whole(1000), "n_test": whole(500), "size": whole(32),
              "seed": whole(0)},
    "lines2x2": {},
    "npz": {"path": text(""), "test_path": text(""), "test_fraction": number(0.2),
            "binarize": BINARIZE},
    **{name: VISION for name in ("mnist", "fashion_mnist", "svhn", "cifar10", "cifar100")},
    "mvtec": {"path": text(""), "size": whole(128), "channels": whole(3)},
}

PARAMS: dict[str, dict[str, dict[str, Param]]] = {
    "dataset": DATASET_PARAMS, "model": MODEL_PARAMS, "loss": LOSS_PARAMS,
    "optimizer": OPTIMIZER_PARAMS,
}


def normal_form(field: str, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` of the named value without the ones at their default (see the module
    doc for ``kept_with``). Names and parameters without a record are kept as written
    (study/checks.py names them)."""
    records = PARAMS.get(field, {}).get(name)
    if records is None:
        return dict(params)
    values = {k: records[k].coerce(v) if k in records else v for k, v in params.items()}
    out = {}
    for key, value in values.items():
        record = records.get(key)
        if record is None or not record.is_default(value) or _kept(record, records, values):
            out[key] = value
    for key, record in records.items():
        if key not in out and _kept(record, records, values):
            out[key] = record.default
    return out


def _kept(record: Param, records: dict[str, Param], values: Mapping[str, Any]) -> bool:
    other = record.kept_with
    return bool(other) and other in values and not records[other].is_default(values[other])


def param_problem(field: str, name: str, params: Mapping[str, Any]) -> str:
    """Why a parameter of the named value is not allowed ('' = none is), naming the
    parameter, its value and what is allowed: e.g. "lmse eps 5 is not allowed; it must
    be a number in (0, 1)"."""
    records = PARAMS.get(field, {}).get(name, {})
    for key, value in params.items():
        if key in records:
            problem = records[key].problem(records[key].coerce(value))
            if problem:
                return f"{name} {key} {value!r} is not allowed; {problem}"
    return ""
