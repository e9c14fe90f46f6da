"""`adstudy export`: a study's stored cells as runs of the trackers researchers use.

One run per stored cell: its hyperparameters (every cell field; a named field's
parameters in full, study.param_columns), its per-epoch curves (the epochs table) and
its final metrics (the trials row). The store stays the record; an export can be made
again at any time and adds only the cells it has not exported yet.

    --tensorboard DIR   study.export_writers.write_tensorboard: DIR/<study>/<label>/<cell_id>
                        with scalars epoch/<metric> per epoch and the HParams plugin's
                        record (needs the `tensorboard` package: pip install '.[tensorboard]')
    --mlflow URI        study.export_writers.write_mlflow: one MLflow run per cell in the
                        experiment named after the study (params, metrics per epoch as
                        steps, tags adstudy.study / .group_id / .cell_id / .status; needs
                        mlflow: pip install '.[mlflow]')

The runs: study.export_runs; the writers: study.export_writers.
"""

from __future__ import annotations

from study.errors import SpecError
from study.store import ResultsStore


def export(results: str, study: str, tensorboard: str | None = None,
           mlflow: str | None = None, experiment: str | None = None) -> dict[str, tuple[int, int]]:
    """Writes the study's cells to TensorBoard and/or MLflow; returns, per target, the runs
    written and the runs skipped (exported before).

    Raises:
        SpecError: when no target is given, or the study stores no trials.
        ImportError: naming the extra to install when a tracker's package is missing.
    """
    if not tensorboard and not mlflow:
        raise SpecError("name a target: --tensorboard DIR and/or --mlflow URI")
    from study.export_runs import cell_runs
    from study.export_writers import write_mlflow, write_tensorboard

    runs = cell_runs(ResultsStore(results, study))
    done: dict[str, tuple[int, int]] = {}
    if tensorboard:
        done["tensorboard"] = write_tensorboard(runs, tensorboard)
    if mlflow:
        done["mlflow"] = write_mlflow(runs, mlflow, experiment or study)
    return done
