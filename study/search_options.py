"""The search options of a study spec: ``search: optuna``'s ``tune:`` and ``optuna:`` sections.

    search: optuna
    compare: {loss: [mse, lmse]}          # scientific: each value is tuned on its own
    vary: {normal_class: [0, 1], seed: [0]}  # every combination is a group
    tune:                                  # nuisance axes, searched inside each group
      lr: {log_uniform: [1e-4, 1e-2]}
      latent_dim: {choice: [4, 8, 16]}
    optuna:
      n_trials: 8                          # per group: the equal budget
      sampler: tpe                         # tpe | random | qmc
      metric: val_recon_mse                # what a group's best is chosen by
      labels: none                         # labels selection may read: none | validation | test
      val_fraction: 0.2                    # share of training images held out to select on
      asha: {metric: val_recon_mse, grace_period: 2}   # optional early stopping

Imports neither optuna nor ray (study.group_search turns these into their objects).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from study.cell import CELL_TYPES, NAMED_FIELDS
from study.errors import SpecError
from study.spec_values import AXIS_FIELDS, normalise_value, reject_unknown

# Distribution kinds: which cell types each accepts.
DISTRIBUTIONS: dict[str, tuple[type, ...]] = {
    "choice": (str, int, float),
    "uniform": (float,),
    "log_uniform": (float,),
    "int_uniform": (int,),
    "int_log_uniform": (int,),
}
# Fields that define the task or how it is judged: repeated over (vary), never tuned.
NOT_TUNABLE = ("seed", "normal_class", "dataset", "protocol", "contamination", "score",
               "val_fraction", "max_test")
# Labels a selection may read, in order: each level allows the ones before it.
LABELS = ("none", "validation", "test")
# Columns a group's best may be chosen by: (direction, labels it reads).
SELECT_METRICS: dict[str, tuple[str, str]] = {
    "val_recon_mse": ("min", "none"),
    "val_auroc": ("max", "validation"),
    "auroc": ("max", "test"),
    "aupr_in": ("max", "test"),
    "aupr_out": ("max", "test"),
}
# Per-epoch figures ASHA may stop trials on.
EPOCH_METRICS: dict[str, tuple[str, str]] = {
    "val_recon_mse": ("min", "none"),
    "val_auroc": ("max", "validation"),
    "train_mse": ("min", "none"),
    "train_loss": ("min", "none"),
    "test_auroc": ("max", "test"),
}
SAMPLERS = ("tpe", "random", "qmc")


@dataclasses.dataclass(frozen=True)
class TuneAxis:
    """One tuned field: a distribution kind and its arguments (bounds or choices)."""

    field: str
    kind: str
    values: tuple[Any, ...]  # (low, high) or the normalised choices


@dataclasses.dataclass(frozen=True)
class Asha:
    """ASHA early stopping inside each group (epochs are Tune's iterations)."""

    metric: str = "val_recon_mse"
    grace_period: int = 2  # epochs every trial runs before it can be stopped
    reduction_factor: int = 3  # 1 / the share of trials that go on at each rung


@dataclasses.dataclass(frozen=True)
class OptunaOptions:
    """The search each group gets: an equal budget of n_trials trials."""

    n_trials: int = 0
    sampler: str = "tpe"
    seed: int = 0
    startup_trials: int = 0  # TPE's random start-up trials; 0 = auto (n_trials // 3, 1..10)
    metric: str = "val_recon_mse"
    labels: str = "none"
    val_fraction: float = 0.2
    asha: Asha | None = None

    @property
    def mode(self) -> str:
        return SELECT_METRICS[self.metric][0]


def parse_tune(raw: Mapping) -> tuple[TuneAxis, ...]:
    """The ``tune:`` section: field -> {kind: arguments}.

    Raises:
        SpecError: naming the field, the value and the choices.
    """
    block = raw.get("tune") or {}
    if not isinstance(block, Mapping):
        raise SpecError(f"tune must be a mapping of field: {{kind: values}}, got {block!r}")
    reject_unknown(block, AXIS_FIELDS, "tune")
    return tuple(_axis(field, value) for field, value in block.items())


def _axis(field: str, value: Any) -> TuneAxis:
    where = f"tune.{field}"
    if field in NOT_TUNABLE:
        raise SpecError(f"{where}: {field!r} cannot be tuned (it defines the task or how it is "
                        f"judged); put it under vary; tunable fields exclude {list(NOT_TUNABLE)}")
    if not isinstance(value, Mapping) or len(value) != 1:
        raise SpecError(f"{where}: expected one {{kind: values}}, e.g. {{choice: [4, 8]}}, got "
                        f"{value!r}; kinds: {list(DISTRIBUTIONS)}")
    (kind, args), = value.items()
    wanted = CELL_TYPES[field]
    if kind not in DISTRIBUTIONS:
        raise SpecError(f"{where}: unknown distribution {kind!r}; choose from "
                        f"{list(DISTRIBUTIONS)}")
    if wanted not in DISTRIBUTIONS[kind] or (kind != "choice" and field in NAMED_FIELDS):
        fits = [k for k, types in DISTRIBUTIONS.items() if wanted in types]
        raise SpecError(f"{where}: {kind!r} does not fit a {wanted.__name__} field; choose from "
                        f"{fits if field not in NAMED_FIELDS else ['choice']}")
    if not isinstance(args, list) or not args:
        raise SpecError(f"{where}.{kind}: expected a non-empty list, got {args!r}")
    values = tuple(normalise_value(f"{where}.{kind}", field, v) for v in args)
    if kind == "choice":
        if len(set(values)) != len(values):
            raise SpecError(f"{where}.choice repeats a value: {args!r}")
        return TuneAxis(field, kind, values)
    low_ok = values[0] > 0 if "log" in kind else True
    if len(values) != 2 or not values[0] < values[1] or not low_ok or not all(
        math.isfinite(v) for v in values
    ):
        rule = "0 < low < high" if "log" in kind else "low < high"
        raise SpecError(f"{where}.{kind}: expected [low, high] with {rule}, got {args!r}")
    return TuneAxis(field, kind, values)


def parse_optuna(raw: Mapping) -> OptunaOptions:
    """The ``optuna:`` section (its ``asha:`` included).

    Raises:
        SpecError: naming the field, the value and the choices.
    """
    block = raw.get("optuna") or {}
    if not isinstance(block, Mapping):
        raise SpecError(f"optuna must be a mapping, got {block!r}")
    names = [f.name for f in dataclasses.fields(OptunaOptions)]
    reject_unknown(block, tuple(names), "optuna")
    values = {k: _option("optuna", k, v, OptunaOptions) for k, v in block.items() if k != "asha"}
    if block.get("asha") is not None:
        asha = block["asha"]
        if not isinstance(asha, Mapping):
            raise SpecError(f"optuna.asha must be a mapping, got {asha!r}")
        reject_unknown(asha, tuple(f.name for f in dataclasses.fields(Asha)), "optuna.asha")
        values["asha"] = Asha(**{k: _option("optuna.asha", k, v, Asha) for k, v in asha.items()})
    options = OptunaOptions(**values)
    _check_choices(options)
    return options


def _option(where: str, name: str, value: Any, kind: type) -> Any:
    default = {f.name: f.default for f in dataclasses.fields(kind)}[name]
    if isinstance(default, str):
        if not isinstance(value, str):
            raise SpecError(f"{where}.{name}: expected a string, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(f"{where}.{name}: expected a number, got {value!r}")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(f"{where}.{name}: expected a whole number >= 0, got {value!r}")
    return value


def _check_choices(options: OptunaOptions) -> None:
    checks = [("optuna.sampler", options.sampler, SAMPLERS),
              ("optuna.labels", options.labels, LABELS),
              ("optuna.metric", options.metric, tuple(SELECT_METRICS))]
    if options.asha:
        checks.append(("optuna.asha.metric", options.asha.metric, tuple(EPOCH_METRICS)))
    for where, value, choices in checks:
        if value not in choices:
            raise SpecError(f"{where}: {value!r} is not allowed; choose from {list(choices)}")
    _check_labels("optuna.metric", SELECT_METRICS[options.metric][1], options)
    if options.asha:
        _check_labels("optuna.asha.metric", EPOCH_METRICS[options.asha.metric][1], options)
        if options.asha.grace_period < 1 or options.asha.reduction_factor < 2:
            raise SpecError(f"optuna.asha: grace_period must be >= 1 and reduction_factor "
                            f">= 2, got {options.asha}")
    if not 0 < options.val_fraction < 1:
        raise SpecError(f"optuna.val_fraction: {options.val_fraction!r} is not allowed; it must "
                        "be in (0, 1), e.g. 0.2")


def _check_labels(where: str, needs: str, options: OptunaOptions) -> None:
    if LABELS.index(needs) > LABELS.index(options.labels):
        metric = where.rsplit(".", 1)[0]
        value = options.asha.metric if where.endswith("asha.metric") else options.metric
        raise SpecError(
            f"{where}: {value!r} reads {needs} labels, which optuna.labels: "
            f"{options.labels!r} does not allow; set {metric.split('.')[0]}.labels: {needs} to "
            f"select on them, or choose from {allowed_metrics(options.labels)}"
        )


def allowed_metrics(labels: str) -> list[str]:
    """Selection metrics that read no more labels than ``labels`` allows."""
    level = LABELS.index(labels)
    return [m for m, (_, needs) in SELECT_METRICS.items() if LABELS.index(needs) <= level]
