"""Tuned studies end to end on a real local Ray: equal budgets, ASHA, selection on the
validation split, the report, and resuming after the driver is killed."""

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analysis import tuned
from analysis.report import build_report
from analysis.views import connect, rows
from study.spec import parse_spec
from study.submit import submit

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SPEC = """
study: {name}
search: optuna
compare:
  loss: [mse, lmse]
vary:
  normal_class: [{classes}]
tune:
  lr: {{log_uniform: [1e-3, 2e-2]}}
  latent_dim: {{choice: [4, 8]}}
optuna:
  n_trials: {n_trials}
  seed: 3
  val_fraction: 0.25
{asha}
fixed:
  dataset: digits
  epochs: {epochs}
  max_test: 150
resources:
  cpu: 1
  max_concurrent: {concurrent}
"""


def tuned_spec(name: str, n_trials: int, epochs: int = 2, asha: str = "",
               classes: str = "0", concurrent: int = 0) -> str:
    return SPEC.format(name=name, n_trials=n_trials, epochs=epochs, asha=asha,
                       classes=classes, concurrent=concurrent)


def spent_per_group(results: Path) -> dict[str, int]:
    found = rows(connect(str(results)), "SELECT group_id, count(*) AS n FROM trials "
                 "WHERE status IN ('complete', 'diverged', 'pruned') GROUP BY group_id")
    return {r["group_id"]: r["n"] for r in found}


def test_every_group_gets_its_budget_and_its_best_by_validation(ray_local, tmp_path):
    results = tmp_path / "results"
    asha = "  asha: {metric: val_recon_mse, grace_period: 1, reduction_factor: 2}"
    spec = parse_spec(tuned_spec("tq", 4, epochs=3, asha=asha, concurrent=1))
    out = io.StringIO()
    progress = submit(spec, results=str(results), out=out)
    assert progress.done == progress.total == 8
    assert re.search(r"pruned [1-9]\d*, retried 0 \| .* \| best val_recon_mse 0\.\d+",
                     out.getvalue())  # the live counts of a tuned study: pruned, best so far
    assert sorted(spent_per_group(results).values()) == [4, 4]

    con = connect(str(results))
    trials = rows(con, "SELECT * FROM trials")
    assert {t["tune_metric"] for t in trials} == {"val_recon_mse"}
    assert {t["tuned_axes"] for t in trials} == {"latent_dim,lr"}
    assert {t["val_fraction"] for t in trials} == {0.25}
    for gid in {t["group_id"] for t in trials}:
        members = [t for t in trials if t["group_id"] == gid]
        assert sorted(t["group_trial"] for t in members) == [0, 1, 2, 3]
        complete = [t for t in members if t["status"] == "complete"]
        (best,) = [b for b in tuned.tuned_best(con) if b["best_cell"] in
                   {t["cell_id"] for t in members}]
        assert best["best_cell"] == min(complete, key=lambda t: t["val_recon_mse"])["cell_id"]
    pruned = [t for t in trials if t["status"] == "pruned"]
    assert pruned, "ASHA stopped no trial: the pruned path went untested"
    epochs = {r["cell_id"]: r["n"] for r in rows(
        con, "SELECT cell_id, count(val_recon_mse) AS n FROM epochs GROUP BY cell_id")}
    for t in trials:
        assert epochs[t["cell_id"]] == t["epochs_run"]  # every epoch stored, val figure too
        assert (t["auroc"] is None) == (t["status"] == "pruned")
        assert t["epochs_run"] < 3 if t["status"] == "pruned" else t["epochs_run"] == 3

    again = io.StringIO()
    assert submit(spec, results=str(results), out=again).total == 0
    assert "8 stored, 0 to run" in again.getvalue()
    grown = parse_spec(tuned_spec("tq", 5, epochs=3, asha=asha, concurrent=1))
    assert submit(grown, results=str(results), out=io.StringIO()).done == 2
    assert sorted(spent_per_group(results).values()) == [5, 5]

    text = build_report(["tq"], results=str(results), out=str(tmp_path / "r")).read_text()
    assert "## Tuned comparison" in text and "| lmse | 1 | 5 | 5 | 5 |" in text


def gcs_address() -> str:
    import ray

    return ray.get_runtime_context().gcs_address


def test_a_killed_tuning_study_resumes_without_exceeding_any_budget(ray_local, tmp_path):
    results, config = tmp_path / "results", tmp_path / "tk.yaml"
    # cells of ~0.4 s: with 2-epoch cells (~0.03 s) the study could end before the kill
    config.write_text(tuned_spec("tk", 4, epochs=40))
    trials_dir = results / "tk" / "trials"
    env = {**os.environ, "RAY_ADDRESS": gcs_address()}  # the driver joins this test's Ray
    log = tmp_path / "driver.log"
    with log.open("w") as sink:  # the child keeps its own copy of the file
        driver = subprocess.Popen(
            [sys.executable, "-m", "study.cli", "submit", str(config), "--results", str(results)],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while len(list(trials_dir.glob("*.parquet"))) < 3 and driver.poll() is None:
            assert time.monotonic() < deadline, "the driver stored nothing in 300 s"
            time.sleep(0.1)
    finally:
        driver.send_signal(signal.SIGKILL)  # a real kill: no clean-up of any kind
        driver.wait()
    before = {p.stem: pq.read_table(p)["status"][0].as_py() for p in trials_dir.glob("*.parquet")}
    assert 3 <= len(before) < 8, f"not killed mid-study; driver log: {log.read_text()[-2000:]}"

    out = io.StringIO()
    progress = submit(parse_spec(config.read_text()), results=str(results), out=out)
    spent_before = sum(s != "failed" for s in before.values())
    assert progress.total == 8 - spent_before and f"{spent_before} stored" in out.getvalue()
    assert sorted(spent_per_group(results).values()) == [4, 4]  # never more
    after = {r["cell_id"]: r for r in rows(connect(str(results)), "SELECT * FROM trials")}
    assert all(after[c]["status"] == s for c, s in before.items())  # kept, not run again
    for gid in {r["group_id"] for r in after.values()}:
        indexes = [r["group_trial"] for r in after.values() if r["group_id"] == gid]
        assert len(indexes) == len(set(indexes))
