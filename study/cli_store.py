"""The store's commands: ``adstudy status``, ``adstudy check``, ``adstudy compact``.

Registered in study.cli's parser (``add_store_parsers``); they read or rewrite the store
only (no Ray, no torch, no analysis), so they answer in about a second, while a submit
runs and on an object store.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from study.commands import command
from study.store import ResultsStore

DEFAULT_RESULTS = "results"


def stores(args: argparse.Namespace) -> list[ResultsStore]:
    """The stores of the named study, or of every study under --results.

    Raises:
        FileNotFoundError: for a results root or a study that is not there.
    """
    from study.store import study_folders

    found = study_folders(args.results)
    if args.study is None:
        return [ResultsStore(args.results, s) for s in found]
    if args.study not in found:
        raise FileNotFoundError(f"study {args.study!r} not found in {args.results}; studies "
                                f"there: {found or 'none'}")
    return [ResultsStore(args.results, args.study)]


def cmd_status(args: argparse.Namespace) -> int:
    from study.status import COLUMNS, study_status

    found = [study_status(store) for store in stores(args)]
    if args.format == "json":
        json.dump(found, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif not found:
        print(f"no studies in {args.results}")
    else:
        print_table(found, COLUMNS)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0: every study whole (notes aside); 1: something is damaged or left out."""
    from study.status import NOTE, check_store

    problems = [{"study": store.study, **p} for store in stores(args)
                for p in check_store(store)]
    if args.format == "json":
        json.dump(problems, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif problems:
        print_table(problems, ("study", "what", "where", "why"))
    damage = [p for p in problems if p["what"] != NOTE]
    if not damage and args.format != "json":
        print(f"every study in {args.results} is whole")
    return 1 if damage else 0


def cmd_compact(args: argparse.Namespace) -> int:
    from study.compaction import compact

    store = ResultsStore(args.results, args.study)
    done = compact(store, sys.stdout)
    print(done.line(store.study))
    return 0


def print_table(records: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Aligned columns, '-' for an empty value."""
    cells = [[("-" if r.get(c) in (None, "") else str(r[c])) for c in columns] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def add_store_parsers(sub) -> None:
    """``status``, ``check`` and ``compact`` under the ``adstudy`` command."""
    results_help = "results root: a local path or a URI (s3://, gs://, file://)"
    for name, text, example, fn in (
        ("status", "every study in a store: cells expected, stored, failed, diverged, running "
         "(a live driver's heartbeat), last activity, spec", "adstudy status --results results",
         cmd_status),
        ("check", "verify a store: list damaged, stray and half-written files and cells (exit "
         "1 when any)", "adstudy check quickstart --results results", cmd_check),
    ):
        p = command(sub, name, text, example, fn)
        p.add_argument("study", nargs="?", help="one study (default: every study in --results)")
        p.add_argument("--results", default=DEFAULT_RESULTS, help=results_help)
        p.add_argument("--format", choices=("table", "json"), default="table")

    p = command(sub, "compact", "merge a study's per-cell files into a few large "
                "Parquet files (atomically; queries read both forms)",
                "adstudy compact quickstart --results s3://bucket/r", cmd_compact)
    p.add_argument("study")
    p.add_argument("--results", default=DEFAULT_RESULTS, help=results_help)
