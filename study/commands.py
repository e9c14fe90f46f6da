"""What every `adstudy` subcommand shares: its help (defaults shown, one example), the
exit codes, --version. Subcommands register through ``command`` (study.cli.parser)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_BROKEN_PIPE = 130, 143, 141  # 128 + the signal
EXIT_CODES = """exit codes:
  0    every cell ran (complete, or diverged: a result too), or none was left to run
  1    some cells failed: stored as failed, with why; submit again to run them again
  2    refused before anything ran (bad input, unusable store, no cluster), or a result
       could not be stored
  130  interrupted (Ctrl-C; 143: SIGTERM): what was stored stays; submit again to resume"""


class Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help; examples and exit codes kept as written."""


class Version(argparse.Action):
    """--version: adstudy's version and commit, and the Ray and torch it runs with."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the versions and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from trainables.provenance import versions

        v = versions()
        commit = f" (git {v['git_sha']})" if v.get("git_sha") else ""
        print(f"adstudy {v['adstudy_version'] or 'unknown'}{commit}, ray {v['ray_version']}, "
              f"torch {v['torch_version']}")
        parser.exit()


def command(sub, name: str, help: str, example: str,
            fn: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """A subcommand with its help, one example, and every option's default shown."""
    p = sub.add_parser(name, help=help, description=help, formatter_class=Help,
                       epilog=f"example:\n  {example}")
    p.set_defaults(fn=fn)
    return p


def silence_stdout() -> None:
    """Points stdout at /dev/null, so the interpreter's last flush finds no closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (a test's capture): nothing to flush
        pass
