"""docs/cluster.md's walk-through, command by command, as a user runs it.

The commands are read from the doc's tested block, so the doc and this test stay the same.
What runs for real: `ray get-auth-token --generate` (into a temporary HOME, whose
~/.ray/auth_token every node and client then reads), `python -m study.data_mirror push`,
`ray job submit --working-dir . -- adstudy submit ...` (the Jobs API of the head's
dashboard), `adstudy sql` and `adstudy report`, all against an S3 server on 127.0.0.1
(moto's) standing in for MY-BUCKET. The cloud calls become their local equivalents:
`ray up` a head with the dashboard and a worker node on this machine, `ray dashboard` the
head's own dashboard address, `ray down` stopping them. `pip install -e '.[cluster]'` is
what `make setup` did for this environment (the dev extra includes it); the test checks
its result. configs/quickstart.yaml is the quickstart at test scale (3 classes, 2 epochs),
reading the digits as an npz file from the pushed data root, so that the node running the
trials mirrors the data root first. The head takes no trials (it runs the job's driver), so
the trials' node shows that the driver joined the cluster.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from s3_loopback import CREDENTIALS, s3_server
from test_cluster import ROOT, STUDY_TIMEOUT_S, LocalCluster, overridden

from analysis.views import connect, rows
from trainables.datasets import load_dataset

pytestmark = [pytest.mark.cluster, pytest.mark.ray, pytest.mark.slow]

DOC = ROOT / "docs" / "cluster.md"
MARKER = "<!-- tests/test_cluster_jobs.py runs this block, command by command -->"
DASHBOARD = "http://127.0.0.1:8265"  # where `ray dashboard cluster.yaml` forwards to
BUCKET = "s3://MY-BUCKET/"


def walkthrough() -> list[list[str]]:
    """The commands of the doc's tested block, each as its words (comments, line
    continuations and a trailing `&` removed)."""
    block = DOC.read_text().split(MARKER, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = block.replace("\\\n", " ").splitlines()
    commands = [shlex.split(line, comments=True) for line in lines]
    return [c[:-1] if c[-1] == "&" else c for c in commands if c]


def test_the_doc_walks_from_ray_up_through_a_job_and_sql_to_ray_down():
    verbs = [" ".join(c[:3]) for c in walkthrough()]
    assert verbs == [
        "pip install -e", "export RAY_AUTH_MODE=token", "ray get-auth-token --generate",
        "ray up cluster.yaml", "ray dashboard cluster.yaml", "python -m study.data_mirror",
        "ray job submit", "adstudy sql select node_id, loss_label, count(*) cells, "
        "avg(auroc) auroc from trials group by all", "adstudy report quickstart",
        "ray down cluster.yaml",
    ]


def quickstart_at_test_scale(folder: Path, data_root: str) -> Path:
    spec = yaml.safe_load((ROOT / "configs" / "quickstart.yaml").read_text())
    spec["vary"] = {"normal_class": [0, 1, 2]}
    spec["fixed"] |= {"dataset": {"name": "npz", "path": "digits.npz"}, "epochs": 2}
    spec["run"] = {"data_root": data_root}
    path = folder / "quickstart.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def digits_npz(folder: Path) -> None:
    images = load_dataset("digits", "~", {})
    folder.mkdir(parents=True)
    np.savez(folder / "digits.npz", x=np.concatenate([images.x_train, images.x_test]),
             y=np.concatenate([images.y_train, images.y_test]))


class Walkthrough:
    """Runs the doc's commands in order; what each one becomes here is in ``run``."""

    def __init__(self, tmp: Path, s3):
        self.tmp, self.s3 = tmp, s3
        self.home = tmp / "home"
        self.env = {**CREDENTIALS, "HOME": str(self.home), "RAY_AUTH_TOKEN": None}
        self.root = Path(tempfile.mkdtemp(prefix="ads-", dir="/tmp"))  # short socket paths
        self.cluster: LocalCluster | None = None
        self.outputs: dict[str, str] = {}
        self.worker_node_id = ""

    def local(self, word: str) -> str:
        """A word of the doc with MY-BUCKET, the dashboard and the config made local."""
        if word.startswith(BUCKET):
            return self.s3.uri(word.removeprefix(BUCKET))
        if word == "configs/quickstart.yaml":
            return str(quickstart_at_test_scale(self.tmp, self.s3.uri("adstudy-data")))
        return {DASHBOARD: self.cluster.dashboard_url if self.cluster else word,
                "python": sys.executable}.get(word, word)

    def shell(self, words: list[str], cwd: Path = ROOT) -> str:
        env = self.cluster.env if self.cluster else overridden(self.base_env(), self.env)
        done = subprocess.run([self.local(w) for w in words], env=env, cwd=cwd,
                              capture_output=True, text=True, timeout=STUDY_TIMEOUT_S)
        out = done.stdout + done.stderr
        assert done.returncode == 0, f"{shlex.join(words)} failed:\n{out[-4000:]}"
        return out

    def base_env(self) -> dict[str, str]:
        import os

        bin_dir = str(Path(sys.executable).parent)
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
        return env | {"PATH": os.pathsep.join([bin_dir, env.get("PATH", "")])}

    def run(self, words: list[str]) -> None:
        verb = " ".join(words[:2])
        if verb == "pip install":  # make setup installed .[dev], which holds .[cluster]
            import aiohttp  # noqa: F401  (ray[default]: the dashboard and Jobs API)
            import boto3  # noqa: F401  (the AWS launcher, and S3 for the tests' server)
        elif verb == "export RAY_AUTH_MODE=token":
            self.env["RAY_AUTH_MODE"] = "token"
        elif verb == "ray up":  # a head with the Jobs API, and a worker with its own mirror
            # As on cluster.yaml, whose head runs the driver and GPU trials wait for workers,
            # the head takes no trials: they all run on the worker, whatever the load (with a
            # CPU on the head, a head's reused actor could take every trial while the
            # worker's actors were still starting).
            self.cluster = LocalCluster(self.root, dashboard=True, env=self.env, head_cpus=0)
            mirror = {"ADSTUDY_DATA_CACHE": str(self.tmp / "w-mirror")}
            self.worker_node_id = self.cluster.add_worker(2, env=mirror).node_id
        elif verb == "ray dashboard":
            assert self.cluster is not None  # the head serves it on 127.0.0.1 already
        elif verb == "ray down":
            self.cluster.stop()
            self.cluster = None
        else:
            self.outputs[verb] = self.shell(words, cwd=self.tmp if verb == "adstudy report"
                                            else ROOT)

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def test_the_walkthrough_runs_a_study_by_ray_jobs_on_the_cluster_into_s3(tmp_path):
    with s3_server() as s3:
        walk = Walkthrough(tmp_path, s3)
        digits_npz(walk.home / "adstudy-data")  # what `push ~/adstudy-data` uploads
        try:
            for words in walkthrough():
                walk.run(words)
        finally:
            walk.close()
        assert (walk.home / ".ray" / "auth_token").is_file()  # the token every node read
        job = walk.outputs["ray job"]
        assert "succeeded" in job and "6 cells in the study, 0 stored, 6 to run" in job
        trials = rows(connect(s3.uri("adstudy")), "select * from trials")
        parquet = [k for k in s3.keys("adstudy/quickstart/trials/") if k.endswith(".parquet")]
        assert len(trials) == 6 == len(parquet)  # on S3, read back through DuckDB
        assert {t["status"] for t in trials} <= {"complete", "diverged"}
        # The job's driver ran on the head and joined the cluster (RAY_ADDRESS): its trials
        # ran on the worker node, not on a Ray of its own.
        assert {t["node_id"] for t in trials} == {walk.worker_node_id}
        assert walk.worker_node_id in walk.outputs["adstudy sql"]
        # The worker mirrored the data root into its own folder before its trials; the
        # driver never reads the data, so the head's default mirror folder stays empty.
        copy = tmp_path / "w-mirror" / "s3" / s3.bucket / "adstudy-data" / "digits.npz"
        assert copy.read_bytes() == (walk.home / "adstudy-data" / "digits.npz").read_bytes()
        assert not (walk.home / ".cache" / "adstudy" / "mirror").exists()
        assert (tmp_path / "report" / "quickstart" / "report.md").is_file()
