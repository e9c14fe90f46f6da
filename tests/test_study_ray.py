"""End to end through real local Ray: submit, store, SQL, resubmit, report."""

import io

import numpy as np
import pytest

from analysis.report import build_report
from analysis.stats import rows
from analysis.views import connect
from study.errors import SpecError
from study.spec import parse_spec
from study.submit import submit

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TINY = """
study: tiny
compare:
  loss: [mse, lmse]
vary:
  normal_class: [0, 1]
  lr: [0.001, 1.0e+30]  # the second diverges (Adam's first steps: nan)
fixed:
  dataset: digits
  latent_dim: 4
  epochs: 2
  max_test: 200
"""
BROKEN = """
study: broken
compare:
  loss: [mse]
fixed:
  dataset: {{name: npz, path: {path}}}
  epochs: 1
"""


def broken_arrays(folder) -> str:
    """An npz that passes every check before the trials (file, x, y, image shape) but
    cannot be split: 6 images, 4 labels. Its trial raises."""
    path = folder / "mismatched.npz"
    np.savez(path, x=np.zeros((6, 8, 8)), y=np.array([0, 0, 1, 1]))
    return str(path)


def test_submit_stores_every_cell_and_a_resubmit_runs_none(ray_local, tmp_path):
    results = str(tmp_path / "results")
    spec = parse_spec(TINY)
    out = io.StringIO()
    progress = submit(spec, results=results, out=out)
    assert progress.done == 8 and progress.counts == {"complete": 4, "diverged": 4}
    assert "8 cells in the study, 0 stored, 8 to run" in out.getvalue()

    con = connect(results)
    trials = rows(con, "select lr, status, auroc, epochs_run, host from trials")
    broken = 1e30
    assert sorted(t["lr"] for t in trials) == [0.001] * 4 + [broken] * 4
    for t in trials:
        diverged = t["lr"] == broken
        assert t["status"] == ("diverged" if diverged else "complete")
        assert (t["auroc"] is None) == diverged and t["host"]
    epochs = rows(con, "select cell_id, count(*) n from epochs group by cell_id")
    assert sorted(e["n"] for e in epochs) == [2, 2, 2, 2]
    assert rows(con, "select count(*) n from scores")[0]["n"] == 4 * 200

    again = io.StringIO()
    record = (tmp_path / "results" / "tiny" / "study.json").read_bytes()
    second = submit(spec, results=results, out=again)
    assert second.total == 0 and "8 stored, 0 to run" in again.getvalue()
    assert (tmp_path / "results" / "tiny" / "study.json").read_bytes() == record  # untouched
    assert rows(connect(results), "select count(*) n from trials")[0]["n"] == 8

    grown = parse_spec(TINY.replace("normal_class: [0, 1]", "normal_class: [0, 1, 2]"))
    third = submit(grown, results=results, out=io.StringIO())
    assert third.total == 4 and third.done == 4

    report = build_report(["tiny"], results=results, out=str(tmp_path / "report"))
    text = report.read_text()
    assert "| lmse | 3 |" in text  # three pairs against mse, one per normal class
    assert (report.parent / "loss_bands.png").stat().st_size > 5000


def test_a_trial_that_raises_is_stored_as_failed_and_retried_next_time(ray_local, tmp_path):
    results = str(tmp_path / "results")
    broken = parse_spec(BROKEN.format(path=broken_arrays(tmp_path)))
    progress = submit(broken, results=results, out=io.StringIO())
    assert progress.counts == {"failed": 1}
    (row,) = rows(connect(results), "select status, error from trials")
    assert row["status"] == "failed" and "holds 6 images (x) but 4 labels" in row["error"]
    out = io.StringIO()
    submit(broken, results=results, out=out)
    assert "1 to run (1 failed before, retried)" in out.getvalue()


def test_a_local_study_missing_its_data_file_is_refused_before_any_trial(ray_local, tmp_path):
    spec = parse_spec(BROKEN.format(path=tmp_path / "does-not-exist.npz"))
    with pytest.raises(SpecError, match="does-not-exist.npz' not found"):
        submit(spec, results=str(tmp_path / "results"), out=io.StringIO())
    assert not list(tmp_path.glob("results/broken/trials/*.parquet"))


def test_a_gpu_study_on_a_local_ray_without_gpus_is_refused_before_any_trial(ray_local, tmp_path):
    if ray_local.cluster_resources().get("GPU", 0):
        pytest.skip("this machine's Ray has a GPU: the study would run")
    spec = parse_spec(TINY.replace("study: tiny", "study: gpu") + "resources: {gpu: 0.5}\n")
    with pytest.raises(SpecError, match=r"resources.gpu: 0.5 .*no GPU; set resources.gpu: 0"):
        submit(spec, results=str(tmp_path), out=io.StringIO())
    assert list(tmp_path.iterdir()) == []  # refused after Ray started: no study.json, no folder
