"""One updating progress line: cells done/total, failures, elapsed time and ETA."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO


def clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Counts finished cells by status and prints one line, rewritten in place on a
    terminal and printed at most every ``every_s`` seconds otherwise (logs, CI)."""

    def __init__(self, study: str, total: int, stream: TextIO = sys.stdout, every_s: float = 10):
        self.study, self.total, self.stream = study, total, stream
        self.counts: Counter[str] = Counter()
        self.started = time.monotonic()
        self.every_s = every_s
        self.last_print = 0.0
        self.tty = stream.isatty()

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        issues = f", {self.counts['failed']} failed, {self.counts['diverged']} diverged"
        eta_text = clock(eta) if self.done else "?"
        return (
            f"[{self.study}] {self.done}/{self.total} cells done{issues}, "
            f"elapsed {clock(elapsed)}, ETA {eta_text}"
        )

    def record(self, status: str) -> None:
        self.counts[status] += 1
        self.show()

    def show(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K")
        elif force or now - self.last_print >= self.every_s or self.done == self.total:
            self.stream.write(self.line() + "\n")
        else:
            return
        self.last_print = now
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
