"""Faults with real processes: a SIGKILLed driver (while `adstudy sql` reads), trial
processes that die, a loss that diverges, a disk that fills up (docs/reliability.md).

Each study is a few tiny digits cells (epochs 2, max_test 100), one cell per Ray trial.
Drivers that must die run as `python -m study.cli submit` in their own process group
(their own local Ray), killed by that group's id at the end.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from reliability_helpers import full_disk, kill_group

from analysis.views import connect, rows
from study.cli import main
from study.errors import StoreError
from study.grid import expand
from study.spec import parse_spec
from study.submit import submit
from trainables.faults import FAULT_ENV
from trainables.run import run_cell

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
TINY = """
study: {name}
compare:
  {compare}
vary:
  seed: {seeds}
fixed:
  dataset: digits
  latent_dim: 4
  epochs: {epochs}
  max_test: 100
resources: {{cpu: 1, max_concurrent: 1}}
run: {{cells_per_trial: 1, max_failures: 1}}
"""
DIVERGES_LR = "1.0e+30"  # Adam's first steps put the weights at ~1e30: nan
HANG_GUARD_S = 300  # a driver that has not finished by then is stuck: fail, do not hang
# Epochs of a cell in the tests that stop a driver mid-study: ~0.6 s a cell here (2 epochs:
# ~0.03 s, so a reused trial process could store every cell before the signal landed).
INTERRUPTED_EPOCHS = 60


def study_text(name: str, losses: str = "[mse]", seeds: str = "[0, 1, 2, 3]",
               compare: str = "", epochs: int = 2) -> str:
    return TINY.format(name=name, compare=compare or f"loss: {losses}", seeds=seeds,
                       epochs=epochs)


def start_driver(config: Path, results: Path, log: Path, *args: str,
                 **env: str) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | env
    return subprocess.Popen(
        [sys.executable, "-m", "study.cli", "submit", str(config), "--results", str(results),
         *args],
        cwd=REPO, env=environ, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def assert_each_cell_once(results: Path, study: str, n_cells: int) -> list[dict]:
    """Every cell has one trials row, its epochs once, its scores; every file reads."""
    for path in (results / study).rglob("*.parquet"):
        pq.read_table(path)  # a half-written file would not read
    con = connect(str(results), [study])
    trials = rows(con, "select cell_id, status, error, retries, epochs_run, node_id, log_path "
                       "from trials")
    assert len(trials) == len({t["cell_id"] for t in trials}) == n_cells
    epochs = rows(con, "select cell_id, count(*) n, count(distinct epoch) d from epochs "
                       "group by cell_id")
    assert all(e["n"] == e["d"] for e in epochs)  # no epoch twice
    return trials


def test_a_sigkilled_driver_loses_nothing_and_sql_never_fails_meanwhile(
    ray_local, tmp_path, capsys
):
    text = study_text("killed", seeds="[0, 1, 2, 3, 4, 5]", epochs=INTERRUPTED_EPOCHS)
    config, results = tmp_path / "killed.yaml", tmp_path / "results"
    config.write_text(text)
    driver = start_driver(config, results, tmp_path / "driver.log")
    seen, trials_dir = [], results / "killed" / "trials"
    try:
        started = time.monotonic()
        while len(list(trials_dir.glob("*.parquet"))) < 2:  # `adstudy sql` while it writes
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()
            assert time.monotonic() - started < HANG_GUARD_S, "the driver stored nothing"
            if not trials_dir.exists():  # a results root that does not exist is an error
                time.sleep(0.2)
                continue
            code = main(["sql", "select count(*) n, sum(e.n) e from trials t join (select "
                         "cell_id, count(*) n from epochs group by cell_id) e using (cell_id)",
                         "--results", str(results), "--format", "json"])
            out = capsys.readouterr()
            assert code == 0, out.err
            seen.append(json.loads(out.out)[0])
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        kill_group(driver.pid)  # the local Ray it started
    assert [s["n"] for s in seen] == sorted(s["n"] for s in seen)  # never went back
    # no cell seen half stored
    assert all(s["e"] in (None, INTERRUPTED_EPOCHS * s["n"]) for s in seen)
    cells = expand(parse_spec(text))
    stored = assert_each_cell_once(results, "killed", len(list(trials_dir.glob("*.parquet"))))
    assert 2 <= len(stored) < len(cells)
    # A trials file damaged while nobody ran: named, and its cell runs again.
    damaged = trials_dir / f"{stored[0]['cell_id']}.parquet"
    damaged.write_bytes(damaged.read_bytes()[:100])
    out = io.StringIO()
    progress = submit(parse_spec(text), results=str(results), out=out)
    assert f"warning: cannot read {damaged}" in out.getvalue()
    assert progress.total == len(cells) - len(stored) + 1 == progress.counts["complete"]
    trials = assert_each_cell_once(results, "killed", len(cells))
    assert {t["status"] for t in trials} == {"complete"}
    con = connect(str(results), ["killed"])
    assert rows(con, "select count(*) n from epochs")[0]["n"] == INTERRUPTED_EPOCHS * len(cells)
    assert rows(con, "select count(*) n from scores")[0]["n"] == 100 * len(cells)


def test_ctrl_c_stops_the_study_with_exit_130_and_says_how_many_are_stored(tmp_path):
    config, results = tmp_path / "ctrlc.yaml", tmp_path / "results"
    config.write_text(study_text("ctrlc", seeds="[0, 1, 2, 3, 4, 5]", epochs=INTERRUPTED_EPOCHS))
    log = tmp_path / "driver.log"
    driver = start_driver(config, results, log)
    trials_dir = results / "ctrlc" / "trials"
    try:
        started = time.monotonic()
        while not list(trials_dir.glob("*.parquet")):
            assert driver.poll() is None, log.read_text()
            assert time.monotonic() - started < HANG_GUARD_S, "the driver stored nothing"
            time.sleep(0.2)
        os.killpg(driver.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        code = driver.wait(timeout=120)
    finally:
        kill_group(driver.pid)
    out = log.read_text()
    stored = len(assert_each_cell_once(results, "ctrlc",
                                       len(list(trials_dir.glob("*.parquet")))))
    assert code == 130, out
    assert f"[ctrlc] interrupted: {stored} of 6 stored; submit again to resume" in out
    for wrong in ("results in", "Tuner.restore", "Resume experiment", "Traceback"):
        assert wrong not in out, wrong


def test_dying_trial_processes_are_retried_then_stored_failed_and_the_study_goes_on(tmp_path):
    text = study_text("faults", compare=f"lr: [0.001, {DIVERGES_LR}]", seeds="[0, 1]")
    config, results = tmp_path / "faults.yaml", tmp_path / "results"
    config.write_text(text)
    cells = {("ok" if c.lr < 1 else "diverges", c.seed): c.cell_id
             for c in expand(parse_spec(text))}
    marker = tmp_path / "died-once"
    fault = f"{cells['ok', 0]},{cells['ok', 1]}@{marker}"  # always; once
    driver = start_driver(config, results, tmp_path / "driver.log", "--progress-every", "1",
                          **{FAULT_ENV: fault})
    try:
        code = driver.wait(timeout=HANG_GUARD_S)
    finally:
        kill_group(driver.pid)
    log = (tmp_path / "driver.log").read_text()
    assert code == 1, log  # a cell failed: not a success
    assert marker.exists()  # the first attempt of (lr 0.001, seed 1) did die
    by_id = {t["cell_id"]: t for t in assert_each_cell_once(results, "faults", 4)}
    always, once = by_id[cells["ok", 0]], by_id[cells["ok", 1]]
    assert always["status"] == "failed" and always["retries"] == 2  # max_failures + 1
    # the cause (how the process died), where (node, pid) and its log stay in the row
    assert "trial failed after 2 attempt(s): ActorDiedError: " in always["error"]
    assert "its worker process has died" in always["error"] and " on " in always["error"]
    assert always["node_id"] and Path(always["log_path"]).is_file()
    assert once["status"] == "complete" and once["retries"] == 1 and once["epochs_run"] == 2
    assert Path(once["log_path"]).is_file()  # every row says where its process logged
    for seed in (0, 1):
        diverged = by_id[cells["diverges", seed]]
        assert diverged["status"] == "diverged" and diverged["epochs_run"] == 0
        assert re.search(r"non-finite train loss \((nan|inf)\) at epoch 1", diverged["error"])
    # The driver's output: one line per failure naming the cell by its label, one per
    # retry, live counts; none of Ray's own output, no escape codes, no Ray trial ids.
    label = f"lr=0.001 seed=0 (cell {cells['ok', 0]})"
    failures = [x for x in log.splitlines() if x.startswith("[faults] failed: ")]
    assert len(failures) == 1 and failures[0].startswith(
        f"[faults] failed: {label}: trial failed after 2 attempt(s): ActorDiedError")
    assert "[faults] retrying lr=0.001 seed=1: attempt 1 failed: ActorDiedError" in log
    assert log.splitlines()[0] == "[faults] 4 cells in the study, 0 stored, 4 to run"
    assert len(re.findall(r"cells \| running \d+, complete", log)) >= 2
    assert "[faults] 1 cell failed" in log and "Ray's own output: " in log
    for noise in ("\x1b[", "WARNING", "Token authentication", "(raylet)", "Traceback",
                  "run_trial_", "state-dump"):
        assert noise not in log, noise
    ray_log = Path(log.split("Ray's own output: ")[1].split()[0])
    assert "A worker died" in ray_log.read_text()  # Ray's own words kept, in its own file


def test_verbose_shows_rays_own_output_without_escape_codes_in_a_log(tmp_path):
    config, results = tmp_path / "loud.yaml", tmp_path / "results"
    config.write_text(study_text("loud", seeds="[0]").replace("max_failures: 1",
                                                              "max_failures: 0"))
    (cell,) = expand(parse_spec(config.read_text()))
    log = tmp_path / "driver.log"
    driver = start_driver(config, results, log, "--verbose", **{FAULT_ENV: cell.cell_id})
    try:
        code = driver.wait(timeout=HANG_GUARD_S)
    finally:
        kill_group(driver.pid)
    out = log.read_text()
    assert code == 1, out
    assert "(raylet) A worker died" in out  # Ray's own words, shown as asked
    assert "Trial task failed" in out  # and Tune's
    assert f"[loud] failed: loss=mse seed=0 (cell {cell.cell_id})" in out
    assert "\x1b[" not in out  # a log, not a terminal: no colour codes


def test_a_diverging_loss_ends_the_cell_as_diverged_with_its_epoch():
    spec = parse_spec(study_text("d", compare=f"lr: [{DIVERGES_LR}]", seeds="[0]"))
    (cell,) = expand(spec)
    records = list(run_cell(cell))
    assert [r["kind"] for r in records] == ["final"]
    final = records[-1]
    assert final["status"] == "diverged" and final["epochs_run"] == 0
    assert re.fullmatch(r"non-finite train loss \((nan|inf)\) at epoch 1", final["error"])
    assert final["auroc"] is None  # no metric invented for a diverged cell


def test_a_full_disk_stops_the_study_with_the_error_and_a_resubmit_completes(
    ray_local, tmp_path
):
    spec = parse_spec(study_text("disk"))
    results = tmp_path / "results"
    fs, _ = full_disk(fail_at=5)  # cell 1 stores; cell 2's scores file runs out of space
    with pytest.raises(StoreError) as err:
        submit(spec, results=str(results), out=io.StringIO(), filesystem=fs)
    message = str(err.value)
    assert "cannot store cell" in message and "No space left on device" in message
    assert "No part of it was kept" in message and "submit again" in message
    files = sorted(p.relative_to(results / "disk").parts[0]
                   for p in (results / "disk").rglob("*") if p.is_file())
    assert files == ["epochs", "scores", "study.json", "trials"]  # one cell, nothing partial
    out = io.StringIO()
    progress = submit(spec, results=str(results), out=out)  # space is back
    assert "4 cells in the study, 1 stored, 3 to run" in out.getvalue()
    assert progress.counts == {"complete": 3}
    assert_each_cell_once(results, "disk", 4)
