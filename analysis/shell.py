"""The interactive SQL shell of `adstudy sql` with no query: statements end with ';'.

A statement is SQL over the views trials/epochs/scores, or a named query by its name
(``convergence;``). ``.list`` lists the named queries, ``.tables`` the views' columns,
``.quit`` (or end of input) leaves. An error is printed and the shell goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

import duckdb

from analysis.queries import DEFAULTS, Options, is_named, listing, run_named
from analysis.views import rows

PROMPT, MORE = "adstudy> ", "    ...> "


def run_shell(
    con, stdin: IO[str], stdout: IO[str],
    write: Callable[[list[dict[str, Any]], IO[str]], None], options: Options = DEFAULTS,
) -> int:
    """Reads statements from ``stdin`` until EOF or ``.quit``; returns how many failed."""
    interactive = stdin.isatty()
    if interactive:
        stdout.write("adstudy sql: end statements with ';'  (.list, .tables, .quit)\n")
    failures, buffer = 0, []
    while True:
        if interactive:
            stdout.write(MORE if buffer else PROMPT)
            stdout.flush()
        line = stdin.readline()
        if not line:
            break
        text = line.strip()
        if not buffer and text.startswith("."):
            if text == ".quit":
                break
            write(_dot_command(con, text), stdout)
            continue
        buffer.append(line)
        if text.endswith(";"):
            failures += _execute(con, "".join(buffer), stdout, write, options)
            buffer = []
    if "".join(buffer).strip():  # a last statement without ';'
        failures += _execute(con, "".join(buffer), stdout, write, options)
    return failures


def _execute(con, statement: str, stdout: IO[str], write, options: Options) -> int:
    statement = statement.strip().rstrip(";").strip()
    if not statement:
        return 0
    try:
        found = run_named(con, statement, options) if is_named(statement) else rows(con, statement)
    except (duckdb.Error, ValueError) as err:
        stdout.write(f"error: {err}\n")
        return 1
    write(found, stdout)
    return 0


def _dot_command(con, text: str) -> list[dict[str, Any]]:
    if text == ".list":
        return listing()
    if text == ".tables":
        return rows(con, """SELECT table_name AS view, string_agg(column_name, ', '
                            ORDER BY ordinal_position) AS columns
                            FROM information_schema.columns
                            WHERE table_name IN ('trials', 'epochs', 'scores')
                            GROUP BY table_name ORDER BY table_name""")
    return [{"error": f"unknown command {text!r}; choose from ['.list', '.quit', '.tables']"}]
