"""adstudy's Python API: the functions the ``adstudy`` command calls, in one place.

    import adstudy

    spec = adstudy.load_spec("configs/quickstart.yaml")   # validated, or SpecError
    cells = adstudy.expand(spec)                          # the grid's cells (Cell records)
    adstudy.submit(spec, results="results")               # runs what is not stored yet
    con = adstudy.connect("results", ["quickstart"])      # DuckDB: trials, epochs, scores, ...
    df = adstudy.table("select * from trials_loss", "results", ["quickstart"])  # pandas
    adstudy.report(["quickstart"], results="results")     # report/quickstart/report.{md,html}
    adstudy.export("quickstart", tensorboard="runs")      # TensorBoard / MLflow runs
    study = adstudy.optuna_study("results", "tuned", "loss=mse normal_class=0")

Every function here only forwards to the module that does the work (named in each
docstring), so the API and the CLI cannot drift apart; heavy imports (torch, ray, duckdb)
happen on the first call that needs them. The names in ``__all__`` are the stable API.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = ["connect", "expand", "export", "load_spec", "optuna_storage", "optuna_study",
           "parse_spec", "report", "submit", "table"]


def load_spec(path: str | Path):
    """A study file, validated (study.spec.load_spec). Raises SpecError naming every
    problem: field, value and choices."""
    from study.spec import load_spec as load

    return load(path)


def parse_spec(text: str):
    """A study as YAML text, validated (study.spec.parse_spec)."""
    from study.spec import parse_spec as parse

    return parse(text)


def expand(spec) -> list:
    """The grid's cells (study.grid.expand); in a tuned study, one cell per group."""
    from study.grid import expand as cells

    return cells(spec)


def submit(spec, results: str = "results", address: str | None = None,
           dry_run: bool = False, out: TextIO = sys.stdout, **options: Any):
    """Runs the cells (or tuned trials) the store lacks (study.submit.submit: what
    `adstudy submit` runs); ``spec`` is a StudySpec or a study file's path. Returns the
    progress counts (``.counts``, ``.done``, ``.total``)."""
    from study.submit import Options
    from study.submit import submit as run

    if isinstance(spec, str | Path):
        spec = load_spec(spec)
    return run(spec, results=results, address=address, out=out,
               options=Options(dry_run=dry_run), **options)


def connect(results: str = "results", studies: Sequence[str] | None = None,
            read_only: bool = False):
    """A DuckDB connection with the views ``trials``, ``epochs``, ``scores``,
    ``trials_loss`` / ``_model`` / ``_optimizer`` / ``_dataset`` (parameters as typed
    columns) and the table ``studies`` (analysis.views.connect, as `adstudy sql`)."""
    from analysis.views import connect as views

    return views(results, studies, read_only=read_only)


def table(sql: str, results: str = "results", studies: Sequence[str] | None = None,
          kind: str = "pandas"):
    """A query's result as a pandas DataFrame, a pyarrow Table (``kind="arrow"``) or a
    polars DataFrame (``kind="polars"``, needs polars)."""
    kinds = {"pandas": "df", "arrow": "arrow", "polars": "pl"}
    if kind not in kinds:
        raise ValueError(f"kind {kind!r} is not allowed; choose from {list(kinds)}")
    result = connect(results, studies).sql(sql)
    found = getattr(result, kinds[kind])()
    return found.read_all() if kind == "arrow" and hasattr(found, "read_all") else found


def report(studies: Sequence[str], results: str = "results", out: str = "report",
           baseline: str = "mse", formats: Sequence[str] = ("md", "html")) -> Path:
    """Writes the report (analysis.report.build_report, as `adstudy report`); returns the
    path of report.md (or report.html)."""
    from analysis.report import build_report

    return build_report(list(studies), results=results, out=out, baseline=baseline,
                        format=list(formats))


def export(study: str, results: str = "results", tensorboard: str | None = None,
           mlflow: str | None = None, experiment: str | None = None) -> dict:
    """One TensorBoard and/or MLflow run per stored cell (study.export.export, as
    `adstudy export`); returns {target: (written, skipped)}."""
    from study.export import export as write

    return write(results, study, tensorboard=tensorboard, mlflow=mlflow,
                 experiment=experiment)


def optuna_storage(results: str, study: str):
    """The Optuna storage of a tuned study's journal (study.optuna_store), for
    ``optuna.load_study`` and Optuna's plots; on an object store, a local copy."""
    from study.optuna_store import FOLDER, NAME, OptunaJournal
    from study.store import ResultsStore

    store = ResultsStore(results, study)
    if store.read_bytes(f"{FOLDER}/{NAME}") is None:
        raise FileNotFoundError(f"no Optuna journal at {store.shown}/{FOLDER}/{NAME}: "
                                f"{study!r} is not a tuned study, or has not run yet")
    return OptunaJournal(store).storage


def optuna_study(results: str, study: str, group: str):
    """One group's Optuna study, by its label (``loss=mse normal_class=0``; the Optuna
    study's name is ``<study>/<label>``)."""
    import optuna

    from study.optuna_store import study_name

    return optuna.load_study(study_name=study_name(study, group),
                             storage=optuna_storage(results, study))
