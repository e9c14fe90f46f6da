"""The interactive SQL shell of `adstudy sql` with no query.

A statement is SQL over the views trials/epochs/scores (it ends with ';' and may span
lines) or a named query by its name, with or without ';' (``convergence``). ``.help``
says this, ``.list`` lists the named queries, ``.tables`` the views' columns, ``.quit``
(or end of input) leaves. On a terminal the lines are edited with readline (arrow keys,
Ctrl-R) and kept in a history file (``$ADSTUDY_HISTORY``, else ``~/.adstudy_history``)
across sessions; Ctrl-C drops the statement being typed. Statements may also be piped in.
An error is printed and the shell goes on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import IO, Any

import duckdb

from analysis.queries import DEFAULTS, QUERIES, Options, is_named, listing, run_named
from analysis.views import rows

PROMPT, MORE = "adstudy> ", "    ...> "
HISTORY_LINES = 1000
HELP = """\
SQL over the views trials, epochs, scores (and the table studies); end it with ';', it
may span lines. A named query runs by its name alone, e.g. convergence (the command
line's --baseline, --metric, --by, --last apply).
  .tables   the views and their columns
  .list     the named queries
  .help     this text
  .quit     leave (or Ctrl-D)
"""


def run_shell(
    con, stdin: IO[str], stdout: IO[str],
    write: Callable[[list[dict[str, Any]], IO[str]], None], options: Options = DEFAULTS,
) -> int:
    """Reads statements from ``stdin`` until EOF or ``.quit``; returns how many failed."""
    reader = Reader(stdin, stdout)
    if reader.interactive:
        stdout.write("adstudy sql: end statements with ';'  (.help, .list, .tables, .quit)\n")
    failures, buffer = 0, []
    try:
        while (line := reader.read(bool(buffer))) is not None:
            text = line.strip()
            if line is Reader.CANCEL:
                buffer = []
            elif not buffer and text.startswith("."):
                if text in (".quit", ".exit"):
                    break
                _dot_command(con, text, stdout, write)
            elif not buffer and is_named(text) and text.rstrip(";") in QUERIES:
                failures += _execute(con, text, stdout, write, options)
            else:
                buffer.append(line + "\n")
                if text.endswith(";"):
                    failures += _execute(con, "".join(buffer), stdout, write, options)
                    buffer = []
        if "".join(buffer).strip():  # a last statement without ';'
            failures += _execute(con, "".join(buffer), stdout, write, options)
    finally:
        reader.close()
    return failures


class Reader:
    """Lines from a terminal (readline: editing, history) or from a pipe."""

    CANCEL = "\x03"  # Ctrl-C at the prompt: the statement being typed is dropped

    def __init__(self, stdin: IO[str], stdout: IO[str]):
        self.stdin, self.stdout = stdin, stdout
        self.interactive = stdin.isatty() and stdin is sys.stdin
        self.history = start_history() if self.interactive else None

    def read(self, continuing: bool) -> str | None:
        """The next line without its newline; None at the end of input."""
        if not self.interactive:
            line = self.stdin.readline()
            return line.rstrip("\n") if line else None
        try:
            return input(MORE if continuing else PROMPT)
        except EOFError:
            self.stdout.write("\n")
            return None
        except KeyboardInterrupt:
            self.stdout.write("^C\n")
            return self.CANCEL

    def close(self) -> None:
        if self.history is not None:
            import readline

            try:
                readline.write_history_file(self.history)
            except OSError:  # a read-only home: no history kept
                pass


def start_history() -> str | None:
    """Loads the history file into readline; returns its path (None without readline)."""
    try:
        import readline
    except ImportError:  # a Python built without it: plain lines
        return None
    path = os.environ.get("ADSTUDY_HISTORY") or os.path.expanduser("~/.adstudy_history")
    try:
        readline.read_history_file(path)
    except OSError:  # the first session
        pass
    readline.set_history_length(HISTORY_LINES)
    return path


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


def _dot_command(con, text: str, stdout: IO[str], write) -> None:
    if text == ".help":
        stdout.write(HELP)
    elif text == ".list":
        write(listing(), stdout)
    elif text == ".tables":
        write(rows(con, """SELECT table_name AS view, string_agg(column_name, ', '
                           ORDER BY ordinal_position) AS columns
                           FROM information_schema.columns
                           WHERE table_name IN ('trials', 'epochs', 'scores')
                           GROUP BY table_name ORDER BY table_name"""), stdout)
    else:
        stdout.write(f"error: unknown command {text!r}; choose from "
                     "['.help', '.list', '.quit', '.tables']\n")
