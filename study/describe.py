"""`adstudy describe`: a study's axes, cells, what the store holds of it, its cost, the
data it lacks on this machine, and every problem of its cells, before anything runs.

Works without the data (a study whose data lives on the cluster is described here: its
size comes from each dataset's record) and, once the same cells passed before, without
torch (study.validate), so it answers in about a second.
"""

from __future__ import annotations

from typing import TextIO

from study.cell import Cell, named_text
from study.cost import estimate
from study.datafiles import missing_files
from study.grid import count
from study.plan import make_plan
from study.spec import StudySpec
from study.spec_values import raise_all
from study.store import ResultsStore
from study.validate import problems


def describe(spec: StudySpec, results: str, out: TextIO) -> None:
    """Prints the study (see the module doc).

    Raises:
        SpecError: naming every problem of the study's cells (missing data is not one:
            it is listed, with how to get it).
    """
    for line in axes_lines(spec):
        out.write(line + "\n")
    store = ResultsStore(results, spec.study)
    plan = make_plan(spec, store, yes=True)
    if spec.search == "optuna":  # groups, each an Optuna search of n_trials (tuned_plan.py)
        from study.tuned_groups import base_cells, probe_cells
        from study.tuned_plan import describe_lines, estimate_cells

        out.write("\n".join(describe_lines(spec)) + "\n")
        to_check = probe_cells(spec, base_cells(spec))
        to_run = estimate_cells(spec)[:plan.budget]
    else:
        out.write(f"  {count(spec)} combinations, {len(plan.cells)} distinct cells\n")
        to_check, to_run = plan.cells, plan.todo
    out.write(f"  resources per trial: {spec.resources.cpu} cpu, {spec.resources.gpu} gpu\n")
    out.write(f"  {curve_line(spec)}\n")
    out.write(f"  stored in {store.path}: {plan.describe()}\n")
    per_trial = 1 if spec.search == "optuna" else spec.run.cells_per_trial  # tuned: 1 a trial
    cost = estimate(to_run, spec.run.data_root, per_trial, spec.resources.gpu,
                    spec.run.curve_test_images, spec.resources.cpu)
    lines = cost.lines()
    lines[0] = lines[0].replace(f"in {cost.cells} cells", f"in the {cost.cells} cells to run")
    out.write("\n".join(lines) + "\n")
    for line in data_lines(to_check, spec.run.data_root):
        out.write(line + "\n")
    raise_all(problems(to_check, spec.run.data_root), f"the cells of {spec.study}")
    out.write("  checks: every field, and every model, loss and optimizer on its data's shape, "
              "passed\n")


def curve_line(spec: StudySpec) -> str:
    """Which test images each epoch's test figures (the curves) are on."""
    every = spec.run.score_every
    when = "every epoch" if every == 1 else f"every {every} epochs and the last"
    images = spec.run.curve_test_images
    which = (f"a fixed subsample of {images} test images" if images
             else "every test image")
    return f"test curves: {when}, on {which} (final metrics: every test image)"


def axes_lines(spec: StudySpec) -> list[str]:
    """The study's name and each compared, varied and fixed field with its values."""
    lines = [f"study {spec.study}: {spec.description}".rstrip(": ")]
    for title, axes in (("compare", spec.compare), ("vary", spec.vary)):
        for name, values in axes:
            shown = ", ".join(named_text(v) if isinstance(v, tuple) else str(v) for v in values)
            lines.append(f"  {title:8s}{name:14s}{len(values):4d} x [{shown}]")
    for name, value in spec.fixed:
        lines.append(f"  {'fixed':8s}{name:14s}"
                     f"{named_text(value) if isinstance(value, tuple) else value}")
    return lines


def data_lines(cells: list[Cell], data_root: str) -> list[str]:
    """What data this machine lacks and how to get it; `submit` refuses to run here
    without it (a cluster's workers may hold it: submit --address there). A URI data root
    is not looked at: each node mirrors it before its trials (study.data_mirror)."""
    if "://" in data_root:
        return [f"  data: under {data_root}, mirrored by each node before its trials "
                "(not looked for from here)"]
    missing = missing_files(cells, data_root)
    if not missing:
        names = ", ".join(sorted({c.label("dataset") for c in cells}))
        return [f"  data: {names}: nothing missing (data root {data_root})"]
    return (["  data missing or unusable on this machine (submit runs here only once it is "
             "there; a cluster whose workers hold it runs it with --address):"]
            + [f"    - {m}" for m in missing])
