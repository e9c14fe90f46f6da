"""``adstudy export``: a study's stored cells as TensorBoard and MLflow runs (study.export).

Registered in study.cli's parser (``add_export_parser``); reads the store only.
"""

from __future__ import annotations

import argparse
import sys

from study.commands import EXIT_OK, EXIT_REFUSED, command


def cmd_export(args: argparse.Namespace) -> int:
    from study.export import export

    try:
        done = export(args.results, args.study, tensorboard=args.tensorboard,
                      mlflow=args.mlflow, experiment=args.experiment)
    except (ImportError, ValueError) as err:
        print(f"adstudy export: error: {err}", file=sys.stderr)
        return EXIT_REFUSED
    where = {"tensorboard": args.tensorboard, "mlflow": args.mlflow}
    for target, (written, skipped) in done.items():
        print(f"{target}: {written} run(s) written to {where[target]}"
              + (f", {skipped} exported before (left as they are)" if skipped else ""))
    if "tensorboard" in done:
        print(f"view them: tensorboard --logdir {args.tensorboard}")
    return EXIT_OK


def add_export_parser(sub) -> None:
    p = command(sub, "export", "write a study's cells as TensorBoard and/or MLflow runs (one "
                "run per cell: hyperparameters, curves per epoch, final metrics)",
                "adstudy export quickstart --tensorboard runs/ --mlflow file:./mlruns",
                cmd_export)
    p.add_argument("study", help="the study's name")
    p.add_argument("--results", default="results", help="results root (path or URI)")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="TensorBoard log folder: DIR/<study>/<label>/<cell_id> per cell "
                   "(pip install 'adstudy[tensorboard]')")
    p.add_argument("--mlflow", metavar="URI",
                   help="MLflow tracking URI (file:./mlruns, sqlite:///mlflow.db, http://...): "
                   "one run per cell (pip install 'adstudy[mlflow]')")
    p.add_argument("--experiment", help="MLflow experiment name (default: the study's name)")
