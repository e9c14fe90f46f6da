"""What a running submission shows: live counts, the ETA, the best so far, one line per
failure and retry.

Counts: cells running (in started trials, not yet stored), complete, diverged, failed,
pruned (tuned studies) and trials retried. The ETA comes from measured trial durations
by trial size (a trial runs a pack of cells, study/packing.py, and its cells end
together): what the running trials have left and the trials not started yet, over the
trial slots. A terminal gets one bar redrawn in place (tqdm: it keeps the bar below the
failure lines printed meanwhile and fits the terminal's width); a log gets a plain line
every ``every_s`` seconds and no escape codes.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from study.cell import NAMED_FIELDS, Cell


def clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def cell_label(cell: Cell, fields: Sequence[str]) -> str:
    """The cell by its values on ``fields`` (the study's axes): 'loss=lmse seed=1'."""
    shown = [f"{f}={cell.label(f) if f in NAMED_FIELDS else getattr(cell, f)}" for f in fields]
    return " ".join(shown) or cell.cell_id


@dataclasses.dataclass
class Running:
    """A started trial: its cells, when its current attempt started, cells it stored."""

    cells: int
    started: float
    stored: int = 0


class Durations:
    """Seconds of finished trials by size (cells), and the ETA they give."""

    def __init__(self) -> None:
        self.by_size: dict[int, list[float]] = defaultdict(list)

    def add(self, size: int, seconds: float) -> None:
        self.by_size[size].append(seconds)

    def expect(self, size: int) -> float | None:
        """Median seconds of a trial of ``size`` cells (the median: a process's first trial
        also pays its start-up); an unmeasured size scales the median seconds per cell of
        all measured trials; None before any trial ended."""
        if self.by_size.get(size):
            return statistics.median(self.by_size[size])
        per_cell = [s / k for k, v in self.by_size.items() for s in v]
        return statistics.median(per_cell) * size if per_cell else None

    def eta(self, running: Sequence[tuple[int, float]], pending: Sequence[int],
            slots: int) -> float | None:
        """Seconds left: running (size, seconds so far) and pending sizes, on ``slots``."""
        left = 0.0
        for size, elapsed in running:
            expected = self.expect(size)
            if expected is None:
                return None
            left += max(expected - elapsed, 0.0)
        for size in pending:
            expected = self.expect(size)
            if expected is None:
                return None
            left += expected
        width = max(1, min(slots, len(running) + len(pending)))
        return left / width


class Progress:
    """Counts a submission's stored cells by status and shows them (see the module doc).

    Args:
        study: the study's name, the lines' prefix.
        total: cells (tuned: trials) this submission runs.
        stream: where the lines go (a terminal gets a redrawn bar).
        every_s: seconds between lines when ``stream`` is not a terminal.
        label: a cell's name in the lines (default: its id).
        best: (metric, 'min' or 'max') a tuned study selects on, shown as the best so far.
        now: the clock (seconds).
    """

    def __init__(self, study: str, total: int, stream: TextIO = sys.stdout,
                 every_s: float = 10.0, label: Callable[[Cell], str] | None = None,
                 best: tuple[str, str] | None = None,
                 now: Callable[[], float] = time.monotonic):
        self.study, self.total, self.stream, self.every_s = study, total, stream, every_s
        self.label = label or (lambda cell: cell.cell_id)
        self.best, self.best_value = best, None
        self.now = now
        self.counts: Counter[str] = Counter()
        self.retried = 0
        self.trials: dict[str, Running] = {}
        self.pending: Counter[int] = Counter()  # planned trial sizes not started yet
        self.slots = 1
        self.durations = Durations()
        self.started = now()
        self.last_print = -math.inf
        self.tty = stream.isatty()
        self.bar: Any = None  # tqdm, made at the first show on a terminal

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "bar": None}  # Tune pickles its callbacks: not the bar

    @property
    def running(self) -> int:
        return sum(t.cells - t.stored for t in self.trials.values())

    # -- events --------------------------------------------------------------------------

    def plan(self, sizes: Sequence[int], slots: int) -> None:
        """The trials to come (cells each) and how many run at once."""
        self.pending, self.slots = Counter(sizes), max(1, slots)

    def trial_started(self, trial_id: str, cells: int) -> None:
        if trial_id in self.trials:  # a retry: the attempt starts again
            self.trials[trial_id].started = self.now()
        else:
            self.trials[trial_id] = Running(cells, self.now())
            if self.pending[cells] > 0:
                self.pending[cells] -= 1
        self.show()

    def trial_ended(self, trial_id: str, measured: bool = True) -> None:
        """A trial ended (``measured``: normally, so its duration counts for the ETA)."""
        trial = self.trials.pop(trial_id, None)
        if trial is not None and measured:
            self.durations.add(trial.cells, self.now() - trial.started)
        self.show()

    def retry(self, text: str) -> None:
        self.retried += 1
        self.say(f"retrying {text}")

    def record(self, status: str, final: dict[str, Any] | None = None,
               cell: Cell | None = None, trial_id: str | None = None) -> None:
        """A cell was stored with ``status`` (its final record; a failure gets a line)."""
        self.counts[status] += 1
        if trial_id in self.trials:
            self.trials[trial_id].stored += 1
        final = final or {}
        if status == "failed" and cell is not None:
            self.say(failure_line(self.label(cell), cell, final))
        if self.best and status == "complete" and final.get(self.best[0]) is not None:
            value = float(final[self.best[0]])
            if self.best_value is None or (value < self.best_value) == (self.best[1] == "min"):
                self.best_value = value
        if self.bar is not None:
            self.bar.update(1)
        self.show()

    # -- output --------------------------------------------------------------------------

    def status(self) -> str:
        """The counts, elapsed time, ETA and best so far."""
        parts = [f"running {self.running}"]
        kinds = ("complete", "diverged", "failed") + (("pruned",) if self.best else ())
        parts += [f"{kind} {self.counts[kind]}" for kind in kinds]
        parts.append(f"retried {self.retried}")
        running = [(t.cells, self.now() - t.started) for t in self.trials.values()]
        eta = self.durations.eta(running, list(self.pending.elements()), self.slots)
        text = (f"{', '.join(parts)} | elapsed {clock(self.now() - self.started)}, "
                f"ETA {'?' if eta is None else clock(eta)}")
        if self.best and self.best_value is not None:
            text += f" | best {self.best[0]} {self.best_value:.4g}"
        return text

    def line(self) -> str:
        return f"[{self.study}] {self.done}/{self.total} cells | {self.status()}"

    def say(self, text: str) -> None:
        """A line of its own (above the bar on a terminal)."""
        line = f"[{self.study}] {text}"
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def tick(self) -> None:
        """Called often while trials run: redraws the bar, or prints a line when due."""
        self.show()

    def show(self, force: bool = False) -> None:
        now = self.now()
        if self.tty:
            if self.bar is None:
                self.bar = make_bar(self)
            if force or now - self.last_print >= 0.5:
                self.bar.set_postfix_str(self.status(), refresh=True)
                self.last_print = now
        elif force or now - self.last_print >= self.every_s:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self.last_print = now

    def close(self) -> None:
        """The final counts (a last line in a log; the bar left in place on a terminal)."""
        self.show(force=True)
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def make_bar(progress: Progress) -> Any:
    from tqdm import tqdm  # a terminal only: a log gets plain lines

    return tqdm(total=progress.total, initial=progress.done, file=progress.stream,
                desc=f"[{progress.study}]", unit="cell", dynamic_ncols=True, leave=True,
                bar_format="{desc} {bar:20} {n_fmt}/{total_fmt}{postfix}")


def failure_line(label: str, cell: Cell, final: dict[str, Any]) -> str:
    """'failed: <label> (cell <id>): <cause> | node <id>, log <path>'."""
    cause = str(final.get("error") or "no error recorded").strip().splitlines()[0]
    where = []
    if final.get("node_id"):
        where.append(f"node {str(final['node_id'])[:12]}")
    if final.get("log_path"):
        where.append(f"log {final['log_path']}")
    return f"failed: {label} (cell {cell.cell_id}): {cause}" + (
        f" | {', '.join(where)}" if where else "")
