"""The ``adstudy`` command: describe, submit, sql, report, landscape, export.

Heavy imports (torch, ray, duckdb) happen inside the commands that need them: ``submit``
prints its first line before loading either, and ``adstudy sql`` and ``adstudy report``
never load torch. Exit codes: study.commands.EXIT_CODES (and 141 when the reader of the
output goes away, ``| head``, as for any Unix tool).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
from collections.abc import Sequence

from study.cli_export import add_export_parser
from study.cli_store import add_store_parsers
from study.commands import (
    EXIT_BROKEN_PIPE,
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_TERMINATED,
    Help,
    Version,
    command,
    silence_stdout,
)
from study.errors import SpecError, StoreError

DEFAULT_RESULTS = "results"


def cmd_describe(args: argparse.Namespace) -> int:
    from study.describe import describe
    from study.spec import load_spec

    describe(load_spec(args.config), args.results, sys.stdout)
    return EXIT_OK


def cmd_submit(args: argparse.Namespace) -> int:
    from study.console import Terminal
    from study.spec import load_spec
    from study.submit import Interrupted, Options, submit

    spec = load_spec(args.config)
    terminal = Terminal(sys.stdout)
    if not args.verbose or not terminal.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")  # no escape codes in logs
    options = Options(dry_run=args.dry_run, verbose=args.verbose, quiet_ray=not args.verbose,
                      every_s=args.progress_every)
    signals: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda number, frame: interrupt(signals, number))
    try:
        progress = submit(spec, results=args.results, address=args.address, yes=args.yes,
                          out=terminal, new_version=args.new_version, options=options)
    except Interrupted:
        return EXIT_TERMINATED if signals else EXIT_INTERRUPTED
    except ConnectionError as err:  # no cluster at --address, or a token it refuses
        print(f"adstudy submit: error: {err}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.dry_run:
        return EXIT_OK
    return EXIT_FAILED if progress.counts["failed"] or progress.done < progress.total else EXIT_OK


def interrupt(signals: list[int], number: int) -> None:
    """SIGTERM (Ray Jobs' stop, a scheduler's kill) ends a submission as Ctrl-C does."""
    signals.append(number)
    raise KeyboardInterrupt


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    from analysis.options import Options, is_named  # light: plain SQL loads no scipy
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
            from analysis.shell import run_shell

            return 1 if run_shell(con, sys.stdin, sys.stdout, write, options) else 0
        named = is_named(args.query)
        if named:
            from analysis.queries import lookup, run_named
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
        from analysis.document import markdown_table

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
    for path in plot_landscapes(folder, summaries, args.by, store):
        print(f"figure written to {path}")
    write_records(table, "table", sys.stdout)
    return 0


def landscape_trials(results: str, study: str, where: str | None) -> list[dict]:
    """The study's complete trials (optionally those matching the SQL condition ``where``
    over the trials view), by cell id: the rows `adstudy landscape` measures."""
    from analysis.guard import check_condition
    from analysis.views import connect, rows
    from study.cell import CELL_FIELDS

    con = connect(results, [study], read_only=True)  # --where is a user's SQL: read-only
    condition = f" AND {check_condition(con, where, 'trials')}" if where else ""
    columns = ", ".join([*CELL_FIELDS, "loss_label", "model_label"])
    return rows(con, f"SELECT {columns} FROM trials WHERE status = 'complete'{condition} "
                     "ORDER BY cell_id")


def add_landscape_parser(sub) -> None:
    """The ``landscape`` subcommand (trainables.landscape; Li et al. 2018)."""
    p = command(sub, "landscape", "loss landscapes and sharpness of a study's trials (needs "
                "run: {save_weights: true})",
                'adstudy landscape lamp_batch_size_smoke --where "normal_class = 0"',
                cmd_landscape)
    p.add_argument("study", help="the study's name")
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


def add_sql_parser(sub) -> None:
    """The ``sql`` subcommand: SQL, a named query, or the shell."""
    p = command(sub, "sql", "run SQL or a named query over the views trials, epochs, scores; "
                "no query opens a shell",
                'adstudy sql "select loss_label, avg(auroc) from trials group by all" '
                "--study quickstart", cmd_sql)
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


def add_report_parser(sub) -> None:
    """The ``report`` subcommand: Markdown and HTML reports of one or more studies."""
    p = command(sub, "report", "write the report of one or more studies",
                "adstudy report quickstart --results results --out report", cmd_report)
    p.add_argument("studies", nargs="+", help="study names; a report over several pools the "
                   "claims of studies that differ only in the compared axis, and says so")
    p.add_argument("--results", default=DEFAULT_RESULTS, help="results root (path or URI)")
    p.add_argument("--out", default="report", help="report root folder")
    p.add_argument("--baseline", default="mse", help="loss the others are compared against")
    p.add_argument("--format", default="md,html", help="comma-separated: md, html")
    p.add_argument("--last", type=int, default=5, help="last epochs for oscillation statistics")


def add_describe_parser(sub) -> None:
    p = command(sub, "describe", "print a study's axes, cells, what is stored, its cost, the "
                "data missing here and every problem of its spec (nothing runs)",
                "adstudy describe configs/quickstart.yaml", cmd_describe)
    p.add_argument("config", help="the study file (YAML)")
    p.add_argument("--results", default=DEFAULT_RESULTS,
                   help="results root whose stored cells are counted (path or URI)")


def add_submit_parser(sub) -> None:
    p = command(sub, "submit", "run the cells of a study not yet stored",
                "adstudy submit configs/quickstart.yaml --results results", cmd_submit)
    p.epilog += "\n\n" + EXIT_CODES
    p.add_argument("config", help="the study file (YAML)")
    p.add_argument("--results", default=DEFAULT_RESULTS,
                   help="results root the driver writes: a local or shared path, or a URI "
                   "(s3://, gs://, file://)")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join: auto, HOST:PORT (GCS) or ray://HOST:10001; "
                   "unset: RAY_ADDRESS if set, else a local Ray for this process")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and check the spec; write nothing, start no Ray")
    p.add_argument("--verbose", action="store_true",
                   help="show Ray's and Tune's own output (warnings, worker output, Tune's "
                   "tracebacks); without it they go to a log file named when a cell fails")
    p.add_argument("--progress-every", type=float, default=10.0, metavar="SECONDS",
                   help="seconds between progress lines when stdout is not a terminal")
    p.add_argument("--yes", action="store_true", help="allow grids over 100,000 cells")
    p.add_argument("--new-version", action="store_true",
                   help="when the results hold another spec under this study name, store this "
                   "one as <study>.v2 (.v3, ...) instead of refusing")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="adstudy", description=__doc__.splitlines()[0], formatter_class=Help,
        epilog="example:\n  adstudy submit configs/quickstart.yaml && adstudy report quickstart"
        "\n\n" + EXIT_CODES)
    top.add_argument("--version", action=Version)
    sub = top.add_subparsers(dest="command", required=True)
    add_describe_parser(sub)
    add_submit_parser(sub)
    add_sql_parser(sub)
    add_report_parser(sub)
    add_landscape_parser(sub)
    add_store_parsers(sub)  # status, check, compact (study.cli_store)
    add_export_parser(sub)  # TensorBoard and MLflow runs (study.cli_export)
    for each in sub.choices.values():  # every subcommand shows its options' defaults
        each.formatter_class = Help
    return top


def main(argv: Sequence[str] | None = None) -> int:
    command_name = "adstudy"
    try:
        args = parser().parse_args(argv)
        command_name = f"adstudy {args.command}"
        return args.fn(args)
    except (SpecError, StoreError, FileNotFoundError) as err:
        print(f"{command_name}: error: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print(f"{command_name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`| head`): quiet, as a Unix tool
        silence_stdout()
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
