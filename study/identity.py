"""Is the spec being submitted the study already stored under its name?

A study grown or shrunk by axis values is the same study: its new cells run, its stored
cells stay (DESIGN, "Cells and idempotence"). A different set of axes, or a different value
of a field every cell shares (a ``fixed`` value, or a default the spec now overrides),
changes what every cell means: such a spec is refused under the stored name, or stored
as a new version of it (``<study>.v2``, ``.v3``, ...) with ``--new-version``. What only
changes how a study runs (resources, run options, description) is the same study, except
``run.curve_test_images``: the test images behind the stored curves (trainables.curves).
"""

from __future__ import annotations

from typing import Any

from study.cell import CELL_FIELDS, FETCH_PARAMS, NAMED_FIELDS, Cell, without_fetch_params
from study.errors import SpecError, StoreError
from study.spec import StudySpec, parse_spec
from study.store import ResultsStore

MAX_VERSIONS = 99


def axis_names(spec: StudySpec) -> set[str]:
    """Every field the spec varies: compared, varied or tuned."""
    return set(spec.axes) | {axis.field for axis in getattr(spec, "tune", ())}


def frame(spec: StudySpec) -> dict[str, Any]:
    """The value every cell of the spec shares in each field no axis varies (a field the
    spec does not mention holds the cell default)."""
    varied = axis_names(spec)
    varied |= {f"{name}_params" for name in varied if name in NAMED_FIELDS}
    values: dict[str, Any] = {}
    for field, value in spec.fixed:
        if field in NAMED_FIELDS:
            values[field], values[f"{field}_params"] = value
        else:
            values[field] = value
    shared = Cell(study=spec.study, **values).to_dict()
    for field in FETCH_PARAMS:  # download: true or false, the data is the same
        shared[f"{field}_params"] = without_fetch_params(field, shared[f"{field}_params"])
    return {f: shared[f] for f in CELL_FIELDS if f != "study" and f not in varied}


def differences(stored: StudySpec, new: StudySpec) -> list[str]:
    """What makes ``new`` another study than ``stored`` (empty: the same study)."""
    found = []
    old_axes, new_axes = axis_names(stored), axis_names(new)
    if old_axes != new_axes:
        found.append(f"axes {sorted(old_axes)} -> {sorted(new_axes)}")
    old_frame, new_frame = frame(stored), frame(new)
    for field in sorted(old_frame.keys() & new_frame.keys()):
        if old_frame[field] != new_frame[field]:
            found.append(f"{field} {old_frame[field]!r} -> {new_frame[field]!r}")
    old_curve, new_curve = stored.run.curve_test_images, new.run.curve_test_images
    if old_curve != new_curve:  # the stored curves would mix two sets of test images
        found.append(f"run.curve_test_images {old_curve!r} -> {new_curve!r}")
    return found


def stored_spec(store: ResultsStore) -> StudySpec | None:
    """The spec stored in the study's study.json (None: no study there, or one stored
    before study.json kept its spec).

    Raises:
        StoreError: when study.json or its spec cannot be read, naming the file.
    """
    where = f"{store.path}/study.json"
    try:
        record = store.read_study_json()
    except (ValueError, OSError) as err:
        raise StoreError(f"cannot read {where}: {err}") from err
    if not record or not record.get("spec_yaml"):
        return None
    try:
        return parse_spec(record["spec_yaml"], origin=where)
    except SpecError as err:
        raise StoreError(f"cannot read the spec stored in {where}: {err}") from err


def check_values(spec: StudySpec) -> None:
    """Checks every value a cell of the spec would hold (study.checks, before the store is
    compared: ``epochs: -1`` is "must be > 0", not another study).

    Raises:
        SpecError: naming the field, the value and what is allowed.
    """
    from study.checks import check_cells  # torch: only when a spec differs
    from study.grid import expand

    check_cells(expand(spec))


def choose_study(spec: StudySpec, results: str, new_version: bool, filesystem=None) -> str:
    """The study name to store ``spec`` under: its own when the store holds no study of
    that name or the same study; with ``new_version``, the first of ``<name>.v2``,
    ``.v3``, ... that is empty or holds the same study.

    Raises:
        SpecError: when the stored study differs and ``new_version`` is false, naming the
            differences and the version ``--new-version`` would use.
    """
    store = ResultsStore(results, spec.study, filesystem)
    stored = stored_spec(store)
    found = differences(stored, spec) if stored else []
    if not found:
        return spec.study
    check_values(spec)  # a bad value is that error, not "a different spec"
    for n in range(2, MAX_VERSIONS + 1):
        name = f"{spec.study}.v{n}"
        other = stored_spec(ResultsStore(results, name, filesystem))
        if other is None or not differences(other, spec):
            break
    else:
        raise SpecError(f"study {spec.study!r} has {MAX_VERSIONS} versions; rename it")
    if new_version:
        return name
    raise SpecError(
        f"{store.path} holds study {spec.study!r} with a different spec: "
        f"{'; '.join(found)}. Adding or removing axis values is the same study, but this "
        f"changes what every cell means. Pass --new-version to store it as study {name!r} "
        f"({ResultsStore(results, name, filesystem).path}), or give the study another name"
    )
