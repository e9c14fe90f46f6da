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
    from study.cell import named_text
    from study.checks import check_cells
    from study.cost import estimate
    from study.grid import count, expand
    from study.spec import load_spec

    spec = load_spec(args.config)
    print(f"study {spec.study}: {spec.description}".rstrip(": "))
    for title, axes in (("compare", spec.compare), ("vary", spec.vary)):
        for name, values in axes:
            shown = ", ".join(named_text(v) if isinstance(v, tuple) else str(v) for v in values)
            print(f"  {title:8s}{name:14s}{len(values):4d} x [{shown}]")
    for name, value in spec.fixed:
        print(f"  {'fixed':8s}{name:14s}{named_text(value) if isinstance(value, tuple) else value}")
    cells = expand(spec)
    if spec.search == "optuna":  # groups, each an Optuna search of n_trials (tuned_plan.py)
        from study.tuned_plan import describe_lines, estimate_cells

        print("\n".join(describe_lines(spec)))
        cells = estimate_cells(spec)
    else:
        print(f"  {count(spec)} combinations, {len(cells)} distinct cells")
    print(f"  resources per trial: {spec.resources.cpu} cpu, {spec.resources.gpu} gpu")
    per_trial = 1 if spec.search == "optuna" else spec.run.cells_per_trial  # tuned: 1 a trial
    cost = estimate(cells, spec.run.data_root, per_trial, spec.resources.gpu)
    print("\n".join(cost.lines()))
    # Checked after the size and cost are shown, so a user without the data sees both.
    check_cells(cells, spec.run.files_root)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from study.spec import load_spec
    from study.submit import submit

    spec = load_spec(args.config)
    try:
        progress = submit(spec, results=args.results, address=args.address, yes=args.yes,
                          out=sys.stdout, new_version=args.new_version)
    except ConnectionError as err:  # no cluster at --address, or a token it refuses
        print(f"adstudy submit: error: {err}", file=sys.stderr)
        return 2
    return 0 if progress.done == progress.total else 1


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    from analysis.queries import Options, is_named, lookup, run_named
    from analysis.shell import run_shell
    from analysis.views import connect, materialize, rows, study_names

    def write(records: list[dict], stream) -> None:
        write_records(records, args.format, stream)

    options = Options(args.baseline, args.axis, args.metric, args.by, args.last)
    try:
        if args.list or args.show_sql:
            return show_queries(args, options)
        studies = args.study or study_names(args.results)
        if len(studies) > 1 and not (args.study or args.all_studies):
            raise ValueError(f"{len(studies)} studies in {args.results}: {studies}; name the "
                             "ones to read with --study (repeatable), or pass --all-studies "
                             "to pool them")
        if len(studies) > 1:
            print(f"adstudy sql: pooling {len(studies)} studies: {', '.join(studies)}",
                  file=sys.stderr)
        con = connect(args.results, studies, read_only=not args.allow_files)
        if args.query is None:  # interactive shell (or statements piped on stdin)
            return 1 if run_shell(con, sys.stdin, sys.stdout, write, options) else 0
        named = is_named(args.query)
        if named and lookup(args.query).sql is None:  # several queries: read the files once
            materialize(con)
        records = run_named(con, args.query, options) if named else rows(con, args.query)
    except (duckdb.Error, ValueError) as err:
        print(f"adstudy sql: error: {err}", file=sys.stderr)
        return 2
    write(records, sys.stdout)
    return 0


def show_queries(args: argparse.Namespace, options) -> int:
    """--list: the named queries; --show-sql NAME: the SQL a named query runs."""
    from analysis.queries import listing, lookup

    if args.list:
        write_records(listing(), args.format, sys.stdout)
        return 0
    if not args.query:
        raise ValueError("--show-sql needs a named query, e.g. adstudy sql convergence --show-sql")
    query = lookup(args.query)
    if query.sql is None:
        raise ValueError(f"named query {args.query!r} combines several queries in Python; "
                         "it has no single SQL text")
    print(query.sql(options).strip())
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

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    if len(args.studies) > 1:  # the report says which of them its claims pool
        print(f"adstudy report: one report over {len(args.studies)} studies: "
              f"{', '.join(args.studies)}", file=sys.stderr)
    try:
        path = build_report(args.studies, results=args.results, out=args.out,
                            baseline=args.baseline, format=formats, last=args.last)
    except ValueError as err:
        print(f"adstudy report: error: {err}", file=sys.stderr)
        return 2
    for fmt in formats:
        print(f"report written to {path.with_suffix('.' + fmt)}")
    return 0


def cmd_landscape(args: argparse.Namespace) -> int:
    """Loss landscapes of a study's stored trials: Parquet, figures and a sharpness table."""
    from analysis.landscape_plot import plot_landscapes, sharpness_table
    from study.landscape_store import data_root_of, options_from, run_landscapes
    from study.store import ResultsStore

    store = ResultsStore(args.results, args.study)
    try:
        options = options_from(args)
        data_root = data_root_of(store)
        trials = landscape_trials(args.results, args.study, args.where)
        summaries = run_landscapes(store, trials, options, data_root, args.device, args.force,
                                   sys.stdout)
        table = sharpness_table(summaries, args.by)
    except (ValueError, KeyError) as err:
        print(f"adstudy landscape: error: {err}", file=sys.stderr)
        return 2
    folder = f"{store.path}/landscape"
    for path in plot_landscapes(folder, summaries, args.by):
        print(f"figure written to {path}")
    write_records(table, "table", sys.stdout)
    return 0


def landscape_trials(results: str, study: str, where: str | None) -> list[dict]:
    """The study's complete trials (optionally those matching the SQL condition ``where``
    over the trials view), by cell id: the rows `adstudy landscape` measures."""
    from analysis.views import connect, rows
    from study.cell import CELL_FIELDS

    con = connect(results, [study])
    condition = f" AND ({where})" if where else ""
    columns = ", ".join([*CELL_FIELDS, "loss_label", "model_label"])
    return rows(con, f"SELECT {columns} FROM trials WHERE status = 'complete'{condition} "
                     "ORDER BY cell_id")


def add_landscape_parser(sub) -> None:
    """The ``landscape`` subcommand (trainables.landscape; Li et al. 2018)."""
    p = sub.add_parser("landscape", help="loss landscapes and sharpness of a study's trials "
                       "(needs run: {save_weights: true})")
    p.add_argument("study")
    p.add_argument("--results", default=DEFAULT_RESULTS, help="results root (local path)")
    p.add_argument("--where", help="SQL condition over trials, e.g. \"normal_class = 0\"")
    p.add_argument("--by", default="batch_size", help="column the figures and table group by")
    p.add_argument("--directions", type=int, help="1-D slices, each a random direction (2)")
    p.add_argument("--points", type=int, help="points per 1-D slice (21)")
    p.add_argument("--grid", type=int, help="points per side of the 2-D grid, 0: none (11)")
    p.add_argument("--radius", type=float, help="slice half-width, filter-normalised (1.0)")
    p.add_argument("--samples", type=int, help="training images the loss is measured on (256)")
    p.add_argument("--batch", type=int, help="images per evaluation batch (128)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--force", action="store_true", help="measure trials measured before again")
    p.set_defaults(fn=cmd_landscape)


def add_sql_parser(sub) -> None:
    """The ``sql`` subcommand: SQL, a named query, or the shell."""
    p = sub.add_parser("sql", help="run SQL or a named query over the views trials, epochs, "
                       "scores; no query opens a shell")
    p.add_argument("query", nargs="?", help="SQL, or a named query (see --list)")
    p.add_argument("--results", default=DEFAULT_RESULTS, help="results root (path or URI)")
    p.add_argument("--study", action="append", help="read this study (repeatable; several "
                   "are pooled, and said so); needed when the results hold several studies")
    p.add_argument("--all-studies", action="store_true",
                   help="pool every study in the results (said so on stderr)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--list", action="store_true", help="list the named queries")
    p.add_argument("--show-sql", action="store_true", help="print a named query's SQL")
    p.add_argument("--baseline", default="mse", help="value compared against (named queries)")
    p.add_argument("--axis", default="loss", help="cell field compared (named queries)")
    p.add_argument("--metric", default="auroc", help="auroc, aupr_in, aupr_out, ...")
    p.add_argument("--by", type=lambda s: tuple(c for c in s.split(",") if c), default=(),
                   help="comma-separated columns to group by, e.g. dataset,normal_class")
    p.add_argument("--last", type=int, default=5, help="last epochs for oscillation queries")
    p.add_argument("--allow-files", action="store_true",
                   help="let SQL read and write files beyond the views (COPY, ATTACH, "
                   "read_csv, ...); without it adstudy sql is read-only")
    p.set_defaults(fn=cmd_sql)


def add_report_parser(sub) -> None:
    """The ``report`` subcommand: Markdown and HTML reports of one or more studies."""
    p = sub.add_parser("report", help="write the report of one or more studies")
    p.add_argument("studies", nargs="+", help="study names; a report over several pools the "
                   "claims of studies that differ only in the compared axis, and says so")
    p.add_argument("--results", default=DEFAULT_RESULTS, help="results root (path or URI)")
    p.add_argument("--out", default="report", help="report root folder")
    p.add_argument("--baseline", default="mse", help="loss the others are compared against")
    p.add_argument("--format", default="md,html", help="comma-separated: md, html")
    p.add_argument("--last", type=int, default=5, help="last epochs for oscillation statistics")
    p.set_defaults(fn=cmd_report)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="adstudy", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("describe", help="print a study's axes and cell count")
    p.add_argument("config")
    p.set_defaults(fn=cmd_describe)

    p = sub.add_parser("submit", help="run the cells of a study not yet stored")
    p.add_argument("config")
    p.add_argument(
        "--results", default=DEFAULT_RESULTS,
        help="results root the driver writes: a local or shared path, or a URI (s3://, gs://, "
        "file://)",
    )
    p.add_argument(
        "--address", default=None,
        help="Ray cluster to join: auto, HOST:PORT (GCS) or ray://HOST:10001 (default: "
        "RAY_ADDRESS if set, else a local Ray for this process)",
    )
    p.add_argument("--yes", action="store_true", help="allow grids over 100,000 cells")
    p.add_argument("--new-version", action="store_true",
                   help="when the results hold another spec under this study name, store this "
                   "one as <study>.v2 (.v3, ...) instead of refusing")
    p.set_defaults(fn=cmd_submit)

    add_sql_parser(sub)
    add_report_parser(sub)
    add_landscape_parser(sub)
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
