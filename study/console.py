"""The terminal of `adstudy submit`: our lines on the real stdout, Ray's own output (its
warnings, the raylet's messages, C++ logs, Tune's tracebacks) in a log file.

Ray writes from many places (Python loggers, threads printing to sys.stdout, C++ code
writing to file descriptor 2), so ``ray_output_to_log`` moves the descriptors 1 and 2
themselves to the log while Ray runs; a Terminal keeps writing to the real stdout. A
reader that goes away (``adstudy submit | head -1``) stops our lines, not the study.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import TextIO


class Terminal:
    """Where a command's own lines go; ``stream`` can be swapped (ray_output_to_log)."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.gone = False  # the reader closed the pipe

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self.gone = True

    def isatty(self) -> bool:
        return not self.gone and self.stream.isatty()

    @property
    def encoding(self) -> str | None:  # tqdm draws its bar in Unicode when it may
        return getattr(self.stream, "encoding", None)

    def __reduce__(self):
        # Tune pickles its callbacks (for a Tuner.restore adstudy never does): a copy
        # writes to the stdout of wherever it is unpickled.
        return (_stdout_terminal, ())


def _stdout_terminal() -> Terminal:
    return Terminal(sys.stdout)


@contextlib.contextmanager
def ray_output_to_log(terminal: Terminal, name: str) -> Iterator[str]:
    """Within: file descriptors 1 and 2 write to a new log file (its path is yielded) and
    ``terminal`` to what descriptor 1 was. Ray processes started within inherit the log."""
    for stream in (sys.stdout, sys.stderr, terminal):
        stream.flush()
    fd, path = tempfile.mkstemp(prefix=f"adstudy-{name}-", suffix=".log")
    saved = os.dup(1), os.dup(2)
    real = os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding="utf-8", errors="replace")
    before = terminal.stream
    terminal.stream = real
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        yield path
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for each in (*saved, fd):
            os.close(each)
        terminal.stream = before
        with contextlib.suppress(OSError):
            real.close()
