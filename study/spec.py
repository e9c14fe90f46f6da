"""StudySpec: the one config object, made from YAML and checked before any work starts.

A study file has three kinds of axes (STYLE 1):

    study: quickstart
    compare:            # scientific axes: what the study compares
      loss: [mse, lmse]
    vary:               # nuisance axes: what it tunes or repeats over (crossed)
      lr: [0.001, 0.003]
      seed: [0, 1]
    fixed:              # everything else that differs from the defaults
      dataset: digits
      epochs: 8
    resources: {cpu: 1, gpu: 0, max_concurrent: 0}
    run: {data_root: ~/.cache/adstudy, max_failures: 1}

Values of the named fields (dataset, model, loss, optimizer) are a name or a mapping with
``name`` and parameters, e.g. ``{name: lamp, base: l1}``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from study.analysis_options import AnalysisOptions, parse_analysis
from study.cell import MAX_STUDY_NAME, study_name_problem
from study.errors import SpecError
from study.search_options import OptunaOptions, TuneAxis, parse_optuna, parse_tune
from study.spec_values import (
    AXIS_FIELDS,
    Problems,
    normalise_value,
    reject_unknown,
    unknown_keys,
)
from study.yaml_load import load_yaml, read_text

TOP_KEYS = ("study", "description", "search", "compare", "vary", "fixed", "tune", "optuna",
            "resources", "run", "analysis")
AXIS_SECTIONS = ("compare", "vary", "fixed")
SEARCHES = ("grid", "optuna")  # optuna: tuned groups (study/search_options.py, tuned_plan.py)
_BAD = object()  # a fixed value that did not parse (its problem is noted)
RUN_CHOICES = {"device": ("auto", "cpu", "cuda"), "gpu_fallback": ("none", "cpu")}


@dataclasses.dataclass(frozen=True)
class Resources:
    """Per-trial resources Ray reserves, and a cap on trials running at once (0 = no cap)."""

    cpu: float = 1.0
    gpu: float = 0.0
    max_concurrent: int = 0


# The fewest test images a curve subsample may have: with 5% normals (20 classes), 200
# random images hold none with probability 0.95^200 = 4e-5 a class (trainables.curves).
MIN_CURVE_IMAGES = 200


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How a study runs; nothing here changes a cell's result, so none of it is in a cell id."""

    # "" = $ADSTUDY_DATA if set, else ~/.cache/adstudy. A URI (s3://bucket/prefix) is
    # mirrored to a local folder on each node before its trials read it (study/data_mirror).
    data_root: str = ""
    max_failures: int = 1  # Tune retries of a trial whose process died
    device: str = "auto"  # auto | cpu | cuda
    # A trial Ray gave a GPU that torch cannot use fails with the reason ('none'), or
    # trains on the CPU ('cpu'; its row then shows gpu_ids beside device 'cpu').
    gpu_fallback: str = "none"
    # Store each trial's final weights (results/<study>/weights/<cell_id>.pt), e.g. for
    # `adstudy landscape`; off by default (a CAE's weights are ~0.5 MB a cell).
    save_weights: bool = False
    # Cells per Ray trial: 0 = auto (about four trials per slot, at most 64 cells). Cells
    # that differ only in seed, lr, loss and normal class train as one vmapped stack
    # inside their trial (trainables.stacking).
    cells_per_trial: int = 0
    # Keep trial processes alive between trials (Ray's default starts one per trial).
    reuse_actors: bool = True
    # Test figures (test_auroc, test_mse_*) every k-th epoch and the last one; NULL in the
    # epochs between (the final record and the train curves are the same for any k). The
    # scoring of a small cell costs about what its training does: k = 5 trains ~2x faster.
    score_every: int = 1
    # Test images behind each epoch's test figures: 0 = all; N = a fixed random subsample
    # of N (the same for every epoch and cell; trainables.curves). Final metrics always use
    # every test image. Changing it changes what stored curves mean (study.identity).
    curve_test_images: int = 0

    def __post_init__(self) -> None:
        for name, choices in RUN_CHOICES.items():  # no 'cuda:N': Ray picks a trial's GPU
            if getattr(self, name) not in choices:
                raise SpecError(f"run.{name}: {getattr(self, name)!r} is not allowed; "
                                f"choose from {list(choices)}")
        if self.score_every < 1:
            raise SpecError(f"run.score_every: {self.score_every!r} is not allowed; it must "
                            "be a whole number >= 1 (1: test figures every epoch)")
        if 0 < self.curve_test_images < MIN_CURVE_IMAGES or self.curve_test_images < 0:
            raise SpecError(f"run.curve_test_images: {self.curve_test_images!r} is not "
                            f"allowed; it must be 0 (every test image) or at least "
                            f"{MIN_CURVE_IMAGES}, so that each class's subsample holds "
                            "normals and anomalies")
        if not self.data_root:
            default = os.environ.get("ADSTUDY_DATA") or "~/.cache/adstudy"
            object.__setattr__(self, "data_root", default)

    @property
    def files_root(self) -> str | None:
        """The data root as a folder of this machine, None for a URI (its files are
        mirrored on the nodes that run trials, so the driver cannot look at them)."""
        return None if "://" in self.data_root else self.data_root


@dataclasses.dataclass(frozen=True)
class StudySpec:
    """A validated study. Axis values are normalised: named fields hold (name, params_json)."""

    study: str
    description: str = ""
    search: str = "grid"
    compare: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    vary: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    fixed: tuple[tuple[str, Any], ...] = ()
    resources: Resources = Resources()
    run: RunOptions = RunOptions()
    source: str = ""  # the YAML text as submitted, kept for study.json
    tune: tuple[TuneAxis, ...] = ()  # search: optuna only: the tuned (nuisance) axes
    optuna: OptunaOptions = OptunaOptions()
    # How the trials are judged (study/analysis_options.py); never part of a cell.
    analysis: AnalysisOptions = AnalysisOptions()
    origin: str = ""  # the study file's absolute path ("" when parsed from text)

    @property
    def axes(self) -> dict[str, tuple[Any, ...]]:
        """Every crossed axis, scientific first, in the order the file gives them."""
        return dict(self.compare) | dict(self.vary)

    @property
    def scientific(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.compare)


def load_spec(path: str | Path) -> StudySpec:
    """Reads and validates a study file.

    Raises:
        SpecError: naming the field, the value and the allowed choices.
    """
    path = Path(path)
    spec = parse_spec(read_text(path), origin=str(path))
    return dataclasses.replace(spec, origin=str(path.resolve()))


def parse_spec(text: str, origin: str = "<string>") -> StudySpec:
    """Parses YAML text into a StudySpec (see module doc for the format).

    Raises:
        SpecError: naming every problem of the file (each section and axis is checked
            even when another one is wrong), one line each.
    """
    raw = load_yaml(text, origin)
    if not isinstance(raw, Mapping):
        raise SpecError(f"{origin} must hold a mapping of keys, got {type(raw).__name__}")
    problems = Problems()
    problems.add(*unknown_keys(raw, TOP_KEYS, "study file"))
    parts = {
        "study": problems.check(_study_name, raw.get("study")),
        "description": str(raw.get("description", "")),
        "search": problems.check(_choice, "search", raw.get("search", "grid"), SEARCHES),
        "compare": _axes(raw, "compare", problems),
        "vary": _axes(raw, "vary", problems),
        "fixed": _fixed(raw, problems),
        "resources": problems.check(_section, raw, "resources", Resources),
        "run": problems.check(_section, raw, "run", RunOptions),
        "tune": problems.check(parse_tune, raw, default=()),
        "optuna": problems.check(parse_optuna, raw),
        "analysis": problems.check(parse_analysis, raw.get("analysis")),
    }
    problems.raise_any(origin)
    spec = StudySpec(source=text, **parts)
    problems.check(_reject_repeats, spec)
    problems.check(check_tuned, spec)
    problems.raise_any(origin)
    return spec


def _study_name(value: Any) -> str:
    if value is None:
        raise SpecError("missing key 'study': give the study a name, e.g. 'study: quickstart'")
    name = str(value)
    problem = study_name_problem(name, MAX_STUDY_NAME)
    if problem:
        raise SpecError(problem)
    return name


def _choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SpecError(f"{field}: {value!r} is not allowed; choose from {list(choices)}")
    return value


def _axes(raw: Mapping, section: str, problems: Problems) -> tuple[tuple[str, tuple], ...]:
    """The section's axes; every problem (of any axis) is noted in ``problems``."""
    block = raw.get(section) or {}
    if not isinstance(block, Mapping):
        problems.add(f"{section} must be a mapping of axis: [values], got {block!r}")
        return ()
    problems.add(*unknown_keys(block, AXIS_FIELDS, section))
    axes = [problems.check(_axis, section, field, values)
            for field, values in block.items() if field in AXIS_FIELDS]
    return tuple(axis for axis in axes if axis is not None)


def _axis(section: str, field: str, values: Any) -> tuple[str, tuple[Any, ...]]:
    if not isinstance(values, list):
        raise SpecError(
            f"{section}.{field} must be a list of values, got {values!r}; "
            f"put a single value under 'fixed' instead"
        )
    if not values:
        raise SpecError(f"{section}.{field} is empty: give at least one value")
    normalised = tuple(normalise_value(f"{section}.{field}", field, v) for v in values)
    if len(set(normalised)) != len(normalised):
        raise SpecError(f"{section}.{field} repeats a value: {values!r}")
    return (field, normalised)


def _fixed(raw: Mapping, problems: Problems) -> tuple[tuple[str, Any], ...]:
    block = raw.get("fixed") or {}
    if not isinstance(block, Mapping):
        problems.add(f"fixed must be a mapping of field: value, got {block!r}")
        return ()
    problems.add(*unknown_keys(block, AXIS_FIELDS, "fixed"))
    values = [(f, problems.check(normalise_value, f"fixed.{f}", f, v, default=_BAD))
              for f, v in block.items() if f in AXIS_FIELDS]
    return tuple((f, v) for f, v in values if v is not _BAD)


def _section(raw: Mapping, key: str, kind: type) -> Any:
    block = raw.get(key) or {}
    if not isinstance(block, Mapping):
        raise SpecError(f"{key} must be a mapping, got {block!r}")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    reject_unknown(block, tuple(fields), key)
    values = {}
    for name, value in block.items():
        default = fields[name].default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise SpecError(f"{key}.{name}: expected true or false, got {value!r}")
        elif isinstance(default, str) and not isinstance(value, str):
            raise SpecError(f"{key}.{name}: expected a string, got {value!r}")
        elif isinstance(default, int | float) and (
            isinstance(value, bool) or not isinstance(value, int | float)
            or not 0 <= value < math.inf
        ):
            raise SpecError(f"{key}.{name}: expected a number >= 0, got {value!r}")
        elif isinstance(default, int) and not isinstance(value, int):
            raise SpecError(f"{key}.{name}: expected a whole number >= 0, got {value!r}")
        values[name] = value
    return kind(**values)


def _reject_repeats(spec: StudySpec) -> None:
    seen: dict[str, str] = {}
    for section, names in (
        ("compare", [n for n, _ in spec.compare]),
        ("vary", [n for n, _ in spec.vary]),
        ("fixed", [n for n, _ in spec.fixed]),
        ("tune", [axis.field for axis in spec.tune]),
    ):
        for name in names:
            if name in seen:
                raise SpecError(f"{name!r} is in both {seen[name]} and {section}: keep it in one")
            seen[name] = section


def check_tuned(spec: StudySpec) -> None:
    """The rules that join the sections: tune needs optuna and optuna needs tune.

    Raises:
        SpecError: naming the section and what to change.
    """
    tuned = spec.search == "optuna"
    if spec.tune and not tuned:
        raise SpecError(f"tune: needs 'search: optuna' (search is {spec.search!r})")
    if not tuned:
        if spec.optuna != OptunaOptions():
            raise SpecError(f"optuna: needs 'search: optuna' (search is {spec.search!r})")
        return
    if not spec.tune:
        raise SpecError("search: optuna needs a tune: section, e.g. "
                        "tune: {lr: {log_uniform: [1e-4, 1e-2]}}")
    if spec.optuna.n_trials < 1:
        raise SpecError(f"optuna.n_trials: {spec.optuna.n_trials!r} is not allowed; give the "
                        "trials each group gets, e.g. optuna: {n_trials: 8}")
    axes = {name for name, _ in (*spec.compare, *spec.vary, *spec.fixed)}
    if "val_fraction" in axes:
        raise SpecError("val_fraction: set optuna.val_fraction in a tuned study (the split "
                        "every trial selects on), not an axis")
    protocols = dict(spec.fixed).get("protocol"), *spec.axes.get("protocol", ())
    if "val_auroc" in (spec.optuna.metric, spec.optuna.asha and spec.optuna.asha.metric) and (
        "contaminated" in protocols
    ):
        raise SpecError("optuna.metric: 'val_auroc' needs labelled held-out anomalies, which "
                        "protocol 'contaminated' has none of; choose 'val_recon_mse'")
