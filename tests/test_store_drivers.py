"""Real drivers against the store: two `adstudy submit` of one study at once (a local
folder: the flock; the loopback S3 server: the read-back protocol), `adstudy status` while
one runs, and a whole study round-tripping on S3: submit, kill, resubmit, sql, report
(issues 14, 15 and 17; docs/reliability.md). Requests a local Ray can never meet are
refused before any trial.

Drivers run as `python -m study.cli submit` in their own process group (their own local
Ray), killed by that group's id at the end.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from moto_s3 import s3_server
from reliability_helpers import kill_group

from analysis.views import connect, rows
from study.cli import main
from study.errors import SpecError
from study.grid import expand
from study.spec import parse_spec
from study.store import ResultsStore
from study.submit import submit

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
TINY = """
study: {name}
vary:
  seed: {seeds}
fixed:
  dataset: digits
  latent_dim: 4
  epochs: {epochs}
  max_test: 100
resources: {{cpu: 1, max_concurrent: 1}}
run: {{cells_per_trial: 1}}
"""
HANG_GUARD_S = 300
# Epochs of a cell in a study whose driver is killed mid-study: ~0.6 s a cell (2 epochs:
# ~0.03 s in a reused trial process, so the study could end before the kill).
KILLED_EPOCHS = 60
HELD = "is held by another driver: 'submit' pid"


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "study.cli", *args], cwd=REPO, text=True,
                          capture_output=True, env={**os.environ, **(env or {})}, timeout=300)


def start_driver(config: Path, results: str, log: Path, env: dict | None = None):
    environ = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | (env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "study.cli", "submit", str(config), "--results", results],
        cwd=REPO, env=environ, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_all(drivers: list[subprocess.Popen]) -> list[int]:
    try:
        return [d.wait(timeout=HANG_GUARD_S) for d in drivers]
    finally:
        for d in drivers:
            kill_group(d.pid)


def each_cell_once(results: str, study: str, n: int, epochs: int = 2) -> list[dict]:
    con = connect(results, [study])
    trials = rows(con, "select cell_id, status from trials")
    assert len(trials) == len({t["cell_id"] for t in trials}) == n
    found = rows(con, "select cell_id, count(*) n, count(distinct epoch) d from epochs "
                      "group by cell_id")
    assert len(found) == n and all(e["n"] == e["d"] == epochs for e in found)
    return trials


def test_two_submits_at_once_on_a_local_folder_run_each_cell_once(tmp_path):
    text = TINY.format(name="twice", seeds="[0, 1]", epochs=2)
    config, results = tmp_path / "twice.yaml", tmp_path / "results"
    config.write_text(text)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    drivers = [start_driver(config, str(results), log) for log in logs]
    status = None
    try:
        started = time.monotonic()
        while status is None or not status["running"]:  # `adstudy status` meanwhile
            assert time.monotonic() - started < HANG_GUARD_S
            done = cli("status", "twice", "--results", str(results), "--format", "json")
            if done.returncode == 0:
                status = json.loads(done.stdout)[0]
            if all(d.poll() is not None for d in drivers):
                break
            time.sleep(0.5)
    finally:
        codes = wait_all(drivers)
    texts = [log.read_text() for log in logs]
    assert sorted(codes) == [0, 2], texts
    refused = texts[codes.index(2)]
    assert HELD in refused and "adstudy status twice" in refused
    assert "cells in the study" not in refused  # refused before it planned anything
    winner = drivers[codes.index(0)].pid
    assert status is not None and f"pid {winner} on" in status["driver"]
    assert status["expected"] == 2 and status["running"] >= 1
    each_cell_once(str(results), "twice", 2)
    record = json.loads((results / "twice" / "study.json").read_text())
    assert len(record["submitted_at"]) == 1 and record["spec_path"] == str(config)
    out = io.StringIO()  # a third submit, after: nothing to run, nothing lost
    submit(parse_spec(text), results=str(results), out=out)
    assert "2 cells in the study, 2 stored, 0 to run" in out.getvalue()
    record = json.loads((results / "twice" / "study.json").read_text())
    assert len(record["submitted_at"]) == 1  # nothing ran: study.json left as it was
    assert not (results / "twice" / "driver.lease").exists()


def test_a_study_round_trips_on_s3_submit_kill_resubmit_sql_report(ray_local, tmp_path,
                                                                  capsys):
    """On the loopback S3 server: two drivers at once (one refused), status while one
    runs, the driver SIGKILLed, a stored cell's scores deleted, a resubmit that reruns
    exactly the rest, then sql, check, compact and report over s3://."""
    text = TINY.format(name="s3", seeds="[0, 1, 2]", epochs=KILLED_EPOCHS)
    config = tmp_path / "s3.yaml"
    config.write_text(text)
    cells = expand(parse_spec(text))
    with s3_server(tmp_path / "moto.log") as server:
        uri = server.uri("results")
        logs = [tmp_path / "a.log", tmp_path / "b.log"]
        drivers = [start_driver(config, uri, logs[0], server.env)]
        store = ResultsStore(uri, "s3")
        status = None
        try:
            started = time.monotonic()
            while len(store.names("trials")) < 2:
                assert drivers[0].poll() is None, logs[0].read_text()
                assert time.monotonic() - started < HANG_GUARD_S, "nothing stored"
                if status is None and main(["status", "--results", uri, "--format",
                                            "json"]) == 0:
                    found = json.loads(capsys.readouterr().out)
                    status = found[0] if found and found[0]["running"] else None
                if status is not None and len(drivers) == 1:  # a second driver, meanwhile
                    drivers.append(start_driver(config, uri, logs[1], server.env))
                time.sleep(0.5)
            drivers[0].send_signal(signal.SIGKILL)
            codes = wait_all(drivers)
        finally:
            for d in drivers:
                kill_group(d.pid)
        assert codes == [-signal.SIGKILL, 2], [log.read_text() for log in logs]
        assert HELD in logs[1].read_text() and f"{uri}/s3" in logs[1].read_text()
        assert status is not None and f"pid {drivers[0].pid} on" in status["driver"]
        stored = store.names("trials")
        victim = stored[0]
        store.fs.delete_file(f"{store.path}/scores/{victim}.parquet")
        out = io.StringIO()
        progress = submit(parse_spec(text), results=uri, out=out)
        assert "1 damaged, rerun: " + victim in out.getvalue()
        assert f"3 cells in the study, {len(stored) - 1} stored" in out.getvalue()
        assert f"results in {uri}/s3" in out.getvalue()
        assert progress.counts["complete"] == len(cells) - len(stored) + 1
        each_cell_once(uri, "s3", len(cells), KILLED_EPOCHS)
        capsys.readouterr()
        assert main(["sql", "select count(*) n from scores", "--results", uri, "--format",
                     "json"]) == 0
        assert json.loads(capsys.readouterr().out) == [{"n": 100 * len(cells)}]
        assert main(["check", "--results", uri]) == 0
        assert main(["compact", "s3", "--results", uri]) == 0
        assert main(["report", "s3", "--results", uri, "--out", str(tmp_path / "r")]) == 0
        assert "Report: s3" in (tmp_path / "r" / "s3" / "report.md").read_text()
        capsys.readouterr()
        assert main(["status", "s3", "--results", uri, "--format", "json"]) == 0
        found = json.loads(capsys.readouterr().out)[0]
        assert (found["expected"], found["stored"], found["running"]) == (3, 3, None)


@pytest.mark.parametrize("extra, message", [
    ("resources: {cpu: 64}\n", "resources.cpu: 64 asks for more CPUs per trial than the Ray "
                               "cluster has (2); a trial would never start"),
    ("run: {device: cuda}\n", "run.device: 'cuda' but the Ray cluster has no GPU"),
])
def test_requests_a_local_ray_can_never_meet_are_refused_before_any_trial(
    ray_local, tmp_path, extra, message
):
    if ray_local.cluster_resources().get("GPU", 0):
        pytest.skip("this machine's Ray has a GPU")
    spec = parse_spec(TINY.format(name="big", seeds="[0]", epochs=2).replace(
        "resources: {cpu: 1, max_concurrent: 1}\nrun: {cells_per_trial: 1}\n", extra))
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        submit(spec, results=str(tmp_path), out=io.StringIO())
    assert not list(tmp_path.glob("big/trials/*.parquet"))
