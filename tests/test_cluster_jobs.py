"""The Ray Jobs path: `ray job submit --working-dir . -- adstudy submit ...` to a cluster.

The Jobs API is served by the dashboard, which needs ray[default] (aiohttp, grpcio, ...);
with only ray[tune] installed (this project's dependencies) the test is skipped.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from test_cluster import ROOT, STUDY_TIMEOUT_S, LocalCluster, study_yaml, trial_rows

pytestmark = [pytest.mark.cluster, pytest.mark.ray, pytest.mark.slow]


def test_ray_job_submit_runs_a_study_on_both_nodes(tmp_path):
    pytest.importorskip("aiohttp", reason="the Ray Jobs API needs ray[default]")
    results = tmp_path / "results"  # absolute: a job's working dir is a temporary copy
    config = study_yaml(tmp_path, "jobs", "  epochs: 2\nresources: {cpu: 1}\n")
    root = Path(tempfile.mkdtemp(prefix="ads-", dir="/tmp"))
    cluster = None
    try:
        cluster = LocalCluster(root, dashboard=True)
        cluster.add_worker(2)
        job = subprocess.run(
            ["ray", "job", "submit", "--address", cluster.dashboard_url, "--working-dir", ".",
             "--", "adstudy", "submit", str(config), "--results", str(results)],
            env=cluster.env, cwd=ROOT, capture_output=True, text=True, timeout=STUDY_TIMEOUT_S,
        )
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    out = job.stdout + job.stderr
    assert job.returncode == 0 and "succeeded" in out, out[-4000:]
    assert "6 cells in the study, 0 stored, 6 to run" in out  # the driver's own output
    rows = trial_rows(results, "jobs")
    assert len(rows) == 6 and len({r["node_id"] for r in rows}) == 2  # RAY_ADDRESS joined
