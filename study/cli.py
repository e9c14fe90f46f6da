"""The ``adstudy`` command: describe, submit, sql, report.

Heavy imports (torch, ray) happen inside the commands that need them, so ``adstudy sql``
and ``adstudy report`` start fast and never load torch.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence

from study.errors import SpecError, StoreError

DEFAULT_RESULTS = "results"


def cmd_describe(args: argparse.Namespace) -> int:
    from study.grid import count, expand
    from study.spec import load_spec
    from study.validate import validate_cells

    spec = load_spec(args.config)
    print(f"study {spec.study}: {spec.description}".rstrip(": "))
    for title, axes in (("compare", spec.compare), ("vary", spec.vary)):
        for name, values in axes:
            shown = ", ".join(shown_value(v) for v in values)
            print(f"  {title:8s}{name:14s}{len(values):4d} x [{shown}]")
    for name, value in spec.fixed:
        print(f"  {'fixed':8s}{name:14s}{shown_value(value)}")
    cells = expand(spec)
    validate_cells(cells)
    print(f"  {count(spec)} combinations, {len(cells)} distinct cells")
    print(f"  resources per trial: {spec.resources.cpu} cpu, {spec.resources.gpu} gpu")
    return 0


def shown_value(value) -> str:
    """An axis value as a user wrote it: named values (name, params_json) as name{...}."""
    if isinstance(value, tuple):
        name, params = value
        return name if params == "{}" else f"{name}{params}"
    return str(value)


def cmd_submit(args: argparse.Namespace) -> int:
    from study.spec import load_spec
    from study.submit import submit

    spec = load_spec(args.config)
    progress = submit(spec, results=args.results, address=args.address, yes=args.yes)
    return 0 if progress.done == progress.total else 1


def cmd_sql(args: argparse.Namespace) -> int:
    from analysis.stats import rows
    from analysis.views import connect

    con = connect(args.results, args.study)
    records = rows(con, args.query)
    write_records(records, args.format, sys.stdout)
    return 0


def write_records(records: list[dict], fmt: str, stream) -> None:
    if fmt == "json":
        json.dump(records, stream, indent=1, default=str)
        stream.write("\n")
    elif fmt == "csv":
        if records:
            writer = csv.DictWriter(stream, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    else:
        from analysis.report import markdown_table

        stream.write(markdown_table(records))


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import build_report

    path = build_report(args.studies, results=args.results, out=args.out, baseline=args.baseline)
    print(f"report written to {path}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="adstudy", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("describe", help="print a study's axes and cell count")
    p.add_argument("config")
    p.set_defaults(fn=cmd_describe)

    p = sub.add_parser("submit", help="run the cells of a study not yet stored")
    p.add_argument("config")
    p.add_argument("--results", default=DEFAULT_RESULTS, help="results root (path or URI)")
    p.add_argument("--address", default=None, help="Ray cluster: auto, HOST:PORT or ray://...")
    p.add_argument("--yes", action="store_true", help="allow grids over 100,000 cells")
    p.set_defaults(fn=cmd_submit)

    p = sub.add_parser("sql", help="run SQL over the views trials, epochs, scores")
    p.add_argument("query")
    p.add_argument("--results", default=DEFAULT_RESULTS)
    p.add_argument("--study", action="append", help="limit to this study (repeatable)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(fn=cmd_sql)

    p = sub.add_parser("report", help="write the report of one or more studies")
    p.add_argument("studies", nargs="+")
    p.add_argument("--results", default=DEFAULT_RESULTS)
    p.add_argument("--out", default="report", help="report root folder")
    p.add_argument("--baseline", default="mse", help="loss the others are compared against")
    p.set_defaults(fn=cmd_report)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except (SpecError, StoreError, FileNotFoundError) as err:
        print(f"adstudy {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
