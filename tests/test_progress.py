"""What a running submission shows (study/progress.py), driven by the events the recorder
sends, on a clock the test sets: live counts, the ETA from measured trial durations by
trial size, the best so far, one line per failure, a log's cadence and a terminal's bar."""

from __future__ import annotations

import io

import pytest

from study.cell import Cell
from study.progress import Durations, Progress, cell_label


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def progress(total: int, stream=None, **kwargs) -> tuple[Progress, Clock, io.StringIO]:
    clock, stream = Clock(), stream or io.StringIO()
    return Progress("s", total, stream, every_s=10, now=clock, **kwargs), clock, stream


def test_counts_every_status_and_running_cells_and_retries():
    p, clock, out = progress(5)
    p.plan([3, 2], slots=2)
    p.trial_started("a", 3)
    p.trial_started("b", 2)
    assert p.running == 5
    p.record("complete", {}, Cell(study="s"), "a")
    p.record("diverged", {}, Cell(study="s", seed=1), "a")
    p.retry("b's cells: attempt 1 failed: ActorDiedError: ...")
    p.trial_started("b", 2)  # the retry starts again: still 2 cells to come
    assert p.running == 3 and p.retried == 1
    p.record("failed", {"error": "ValueError: x\ntraceback"}, Cell(study="s", seed=2), "b")
    assert p.counts == {"complete": 1, "diverged": 1, "failed": 1} and p.done == 3
    assert p.status().startswith("running 2, complete 1, diverged 1, failed 1, retried 1")
    assert "pruned" not in p.status()  # a grid study has no pruned cells


def test_the_eta_comes_from_measured_trials_of_each_size():
    p, clock, _ = progress(16)
    p.plan([4, 4, 4, 2, 2], slots=2)
    p.trial_started("a", 4)
    p.trial_started("b", 2)
    assert "ETA ?" in p.status()  # nothing measured yet: no guess
    clock.t = 10.0
    p.trial_ended("b")  # a 2-cell trial takes 10 s
    p.trial_started("c", 4)
    clock.t = 30.0
    p.trial_ended("a")  # a 4-cell trial takes 30 s
    # left: c (4 cells, 20 s in: 10 s more), one 4-cell trial (30 s) and one 2-cell (10 s)
    # not started; on 2 slots: 50 s / 2
    assert Durations.eta(p.durations, [(4, 20.0)], [4, 2], 2) == pytest.approx(25.0)
    assert "ETA 0:00:25" in p.status()
    durations = Durations()
    durations.add(4, 40.0)  # an unmeasured size scales the seconds per cell measured
    assert durations.expect(1) == pytest.approx(10.0)
    assert durations.eta([], [1, 1, 1], 3) == pytest.approx(10.0)
    for seconds in (8.0, 9.0):  # a process's first trial also paid its start-up (40 s)
        durations.add(4, seconds)
    assert durations.expect(4) == pytest.approx(9.0)


def test_a_failed_cell_gets_one_line_naming_its_label_cause_node_and_log():
    label = lambda cell: cell_label(cell, ["loss", "seed"])  # noqa: E731
    p, _, out = progress(2, label=label)
    cell = Cell(study="s", loss="lamp", loss_params='{"base":"l1"}', seed=3)
    p.record("failed", {"error": "trial failed after 2 attempt(s): ActorDiedError: died\nx",
                        "node_id": "8afa8b735806" + "0" * 40, "log_path": "/tmp/w.err"}, cell)
    lines = [x for x in out.getvalue().splitlines() if "failed:" in x]
    assert lines == [f"[s] failed: loss=lamp(base=l1) seed=3 (cell {cell.cell_id}): trial failed "
                     "after 2 attempt(s): ActorDiedError: died | node 8afa8b735806, "
                     "log /tmp/w.err"]


def test_a_tuned_study_shows_its_best_so_far_in_its_metric_direction():
    p, _, _ = progress(3, best=("val_recon_mse", "min"))
    for value in (0.3, 0.1, 0.2):
        p.record("complete", {"val_recon_mse": value}, Cell(study="s"))
    p.record("pruned", {"val_recon_mse": 0.01}, Cell(study="s"))  # not a finished trial
    assert "best val_recon_mse 0.1" in p.status() and "pruned 1" in p.status()
    q, _, _ = progress(2, best=("val_auroc", "max"))
    for value in (0.6, 0.9):
        q.record("complete", {"val_auroc": value}, Cell(study="s"))
    assert "best val_auroc 0.9" in q.status()


def test_a_log_gets_a_line_every_so_many_seconds_and_no_escape_codes():
    p, clock, out = progress(4)
    p.trial_started("a", 4)  # the first line at once
    for t in range(1, 35):
        clock.t = float(t)
        p.tick()
    p.close()
    lines = out.getvalue().splitlines()
    assert [x.split("elapsed ")[1][:7] for x in lines] == ["0:00:00", "0:00:10", "0:00:20",
                                                           "0:00:30", "0:00:34"]
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_a_terminal_gets_one_bar_redrawn_in_place_with_lines_above_it():
    p, clock, out = progress(2, stream=Tty())
    p.trial_started("a", 2)
    clock.t = 1.0
    p.record("failed", {"error": "ValueError: bad"}, Cell(study="s"), "a")
    clock.t = 2.0
    p.record("complete", {}, Cell(study="s", seed=1), "a")
    p.close()
    text = out.getvalue()
    assert "\r" in text  # redrawn in place
    assert text.count("\n") <= 3  # the failure line and the bar's last state, not a log
    assert "[s] failed: " in text and "2/2" in text and "complete 1, diverged 0, failed 1" in text
