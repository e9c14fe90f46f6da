"""A real multi-node Ray cluster on this one machine: `adstudy submit --address` against it.

The head and every worker node are separate `ray start --block` processes on 127.0.0.1,
each in a session of its own (holding its GCS, raylet and worker processes), with its own
--temp-dir, free ports and RAY_AUTH_MODE=token plus a token made for this module
(RAY_AUTH_TOKEN), which the `adstudy submit` drivers get too. Teardown kills every process
of every session started here, even when a test fails. Run alone with `pytest -m cluster`.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analysis.views import connect
from analysis.views import rows as rows_of

pytestmark = [pytest.mark.cluster, pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120
STUDY_TIMEOUT_S = 400


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node_ports() -> list[str]:
    """Free ports for every listener of a node, so clusters of other tests never collide.

    Worker ports come from 20000-29999, below Linux's ephemeral range that free_port uses.
    """
    base = random.randrange(20000, 29900, 100)
    return [
        f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--min-worker-port={base}",
        f"--max-worker-port={base + 99}",
    ]


class Node:
    """One `ray start --block` process and the session it leads."""

    def __init__(self, args: list[str], env: dict[str, str], temp_dir: Path):
        self.temp_dir = temp_dir
        self.log = temp_dir.with_suffix(".log")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                ["ray", "start", "--block", f"--temp-dir={temp_dir}", *args],  # env's PATH
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=ROOT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Ray runtime started" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ray start failed:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.5)

    @property
    def node_id(self) -> str:
        """Ray's id of this node (the hex of a trials row's node_id), from its raylet's log."""
        log = (self.temp_dir / "session_latest" / "logs" / "raylet.out").read_text()
        return re.search(r"Setting node ID node_id=([0-9a-f]+)", log).group(1)

    def session_pids(self) -> dict[int, bytes]:
        """pid -> command line of every live process of this node: its session holds the
        GCS and raylet (in the group of `ray start`) and the workers (in groups of their own).
        """
        found = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.getsid(int(pid)) == self.proc.pid:
                    found[int(pid)] = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:  # gone meanwhile
                continue
        return found

    def trial_processes(self) -> list[int]:
        """Pids of this node's Tune trial actors running a trial (ray::ImplicitFunc.train)."""
        return [
            pid for pid, cmd in self.session_pids().items() if cmd.startswith(b"ray::ImplicitFunc")
        ]

    def kill(self) -> None:
        """The node dies at once, as when its machine is lost: SIGKILL to every process."""
        for _ in range(50):
            pids = [pid for pid, cmd in self.session_pids().items() if cmd]  # not zombies
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        self.proc.wait(timeout=30)

    def stop(self, drain: bool = True) -> None:
        """Drains the node (SIGTERM, as `ray stop` does), then kills what is left. A head
        drains for 30 s whatever it runs, so it is killed without draining."""
        if drain and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=40)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.kill()


class LocalCluster:
    """A head node (``head_cpus`` CPUs) on 127.0.0.1 that worker nodes join. With
    ``dashboard``, the head serves the dashboard and the Ray Jobs API at ``dashboard_url``
    (needs ray[default]).
    ``env`` overrides the environment of every node and driver (None removes a variable,
    e.g. RAY_AUTH_TOKEN, so that the token comes from ~/.ray/auth_token)."""

    def __init__(self, root: Path, dashboard: bool = False, env: dict | None = None,
                 head_cpus: int = 1):
        self.root = root
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        dashboard_port = free_port()
        self.dashboard_url = f"http://127.0.0.1:{dashboard_port}"
        self.env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        # `ray` and `adstudy` of this interpreter's environment, for the nodes and drivers.
        bin_dir = str(Path(sys.executable).parent)
        self.env |= {
            "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0",
            # The GCS declares a silent node dead after ~2 s instead of ~15 s.
            "RAY_health_check_period_ms": "500",
            "RAY_health_check_timeout_ms": "500",
            "RAY_health_check_failure_threshold": "4",
        }
        self.env = overridden(self.env, env or {})
        self.nodes: list[Node] = []
        self.head = self._start(
            "head",
            ["--head", f"--port={self.port}", f"--num-cpus={head_cpus}", "--num-gpus=0",
             "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
             f"--include-dashboard={str(dashboard).lower()}"],
        )

    def _start(self, name: str, args: list[str], env: dict | None = None) -> Node:
        common = ["--node-ip-address=127.0.0.1", "--disable-usage-stats",
                  "--object-store-memory=100000000", *node_ports()]
        node = Node([*args, *common], overridden(self.env, env or {}), self.root / name)
        self.nodes.append(node)
        return node

    def add_worker(self, cpus: int, gpus: int = 0, env: dict | None = None) -> Node:
        """A worker node; ``env`` adds to (or overrides) the cluster's for its processes."""
        args = [f"--address={self.address}", f"--num-cpus={cpus}", f"--num-gpus={gpus}"]
        return self._start(f"worker{len(self.nodes)}", args, env)

    def submit(self, config: Path, results: str, wait: bool = True, env: dict | None = None):
        """`adstudy submit CONFIG --address ADDR --results RESULTS` as a driver process."""
        argv = ["adstudy", "submit", str(config), "--address", self.address, "--results", results]
        proc = subprocess.Popen(
            argv, env=env or self.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        if not wait:
            return proc
        out, _ = proc.communicate(timeout=STUDY_TIMEOUT_S)
        assert proc.returncode == 0, out[-4000:]
        return out

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop(drain=node is not self.head)


def overridden(env: dict[str, str], changes: dict[str, str | None]) -> dict[str, str]:
    out = env | {k: v for k, v in changes.items() if v is not None}
    return {k: v for k, v in out.items() if changes.get(k, "") is not None}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A head node for this module; tests add (and kill) worker nodes. Short temp root:
    Ray's socket paths under it must stay below 108 characters."""
    root = Path(tempfile.mkdtemp(prefix="ads-", dir="/tmp"))
    made = None
    try:
        made = LocalCluster(root)
        yield made
    finally:
        if made is not None:
            made.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def worker(cluster: LocalCluster, request) -> Iterator[Node]:
    """A worker node joined for one test; (cpus, gpus) come from the test's parametrize."""
    cpus, gpus = request.param
    node = cluster.add_worker(cpus, gpus)
    try:
        yield node
    finally:
        node.stop()


def study_yaml(tmp_path: Path, name: str, extra: str, classes: str = "[0, 1, 2]") -> Path:
    config = tmp_path / f"{name}.yaml"
    config.write_text(
        f"study: {name}\n"
        "compare:\n  loss: [mse, lmse]\n"
        f"vary:\n  normal_class: {classes}\n"
        "fixed:\n  dataset: digits\n  latent_dim: 4\n  max_test: 100\n" + extra
    )
    return config


def trial_rows(results: Path, study: str) -> list[dict]:
    files = sorted((results / study / "trials").glob("*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def most_at_once(rows: list[dict]) -> int:
    """The most trials running at once: for each trial's start, how many [started_at,
    finished_at) intervals hold it. Times are whole ISO seconds, so the studies measured
    here run trials of several seconds."""
    return max(
        sum(1 for other in rows if other["started_at"] <= r["started_at"] < other["finished_at"])
        for r in rows
    )


@pytest.mark.parametrize("worker", [(2, 0)], indirect=True)
def test_a_study_submitted_to_a_two_node_cluster_runs_on_both(cluster, worker, tmp_path):
    results = tmp_path / "results"
    # Cells of ~2 s each: Tune hands the next trial to the first actor that is free, even
    # one already waiting for another node's actor to start, so cells of a few hundredths
    # of a second (2 epochs) all went to whichever node's actor started first (seen once).
    config = study_yaml(tmp_path, "spread", "  epochs: 150\nresources: {cpu: 1}\n")
    out = cluster.submit(config, f"file://{results}")  # an object-store style URI
    assert "6 cells in the study, 0 stored, 6 to run" in out
    rows = trial_rows(results, "spread")
    assert len(rows) == 6 and {r["status"] for r in rows} <= {"complete", "diverged"}
    assert len({r["node_id"] for r in rows}) == 2  # the head's 1 CPU and the worker's 2
    assert len({r["host"] for r in rows}) == 1  # ... on this one machine
    assert all(r["gpu_ids"] == "" and r["gpu_share"] == 0 and r["retries"] == 0 for r in rows)
    # `adstudy sql` reads the same URI: DuckDB over the Parquet the driver wrote.
    by_node = rows_of(connect(f"file://{results}"), "select node_id, count(*) n from trials "
                      "group by node_id order by n")
    assert [r["n"] for r in by_node] == sorted(
        sum(1 for r in rows if r["node_id"] == node) for node in {r["node_id"] for r in rows}
    )

    again = cluster.submit(config, f"file://{results}")
    assert "6 stored, 0 to run" in again


@pytest.mark.parametrize("worker", [(2, 0)], indirect=True)
def test_max_concurrent_caps_the_trials_running_at_once(cluster, worker, tmp_path):
    results = tmp_path / "results"
    extra = "  epochs: 100\nresources: {cpu: 0.5, max_concurrent: 2}\n"
    cluster.submit(study_yaml(tmp_path, "capped", extra, "[0, 1]"), str(results))
    rows = trial_rows(results, "capped")
    assert len(rows) == 4
    assert most_at_once(rows) == 2  # 6 slots of 0.5 CPU, but at most 2 trials at once


def test_a_driver_without_the_cluster_token_is_refused_with_a_hint(cluster, tmp_path):
    config = study_yaml(tmp_path, "refused", "  epochs: 1\n")
    env = cluster.env | {"RAY_AUTH_TOKEN": secrets.token_hex(32)}  # not the cluster's
    proc = cluster.submit(config, str(tmp_path / "results"), wait=False, env=env)
    out, _ = proc.communicate(timeout=STUDY_TIMEOUT_S)
    assert proc.returncode == 2, out[-3000:]
    assert f"cannot join the Ray cluster at '{cluster.address}'" in out
    assert "RAY_AUTH_MODE=token" in out


def refused_gpu_trials(cluster: LocalCluster, tmp_path: Path) -> None:
    """A study without gpu_fallback on a node where Ray has a GPU (`ray start --num-gpus=1`)
    that torch cannot use: every trial fails with the reason, nothing trains on the CPU."""
    extra = "  epochs: 1\nresources: {cpu: 1, gpu: 1}\n"
    results = tmp_path / "refused"
    driver = cluster.submit(study_yaml(tmp_path, "nogpu", extra, "[0]"), str(results),
                            wait=False)
    out, _ = driver.communicate(timeout=STUDY_TIMEOUT_S)
    assert driver.returncode == 1, out[-4000:]  # failed cells: exit 1 (study.commands)
    assert "2 failed" in out  # the driver's count; the reason is in each row
    rows = trial_rows(results, "nogpu")
    assert len(rows) == 2 and {r["status"] for r in rows} == {"failed"}
    for row in rows:
        assert row["error"].startswith("GpuUnusableError: Ray assigned GPU 0 on host")
        assert "not training on the CPU instead" in row["error"]
        assert "'run: {gpu_fallback: cpu}'" in row["error"]


@pytest.mark.parametrize("worker", [(2, 1)], indirect=True)
def test_quarter_gpu_trials_pack_four_to_a_gpu_and_fail_or_fall_back_without_cuda(
        cluster, worker, tmp_path):
    import torch

    on_cpu = not torch.cuda.is_available()
    if on_cpu:
        refused_gpu_trials(cluster, tmp_path)
    results = tmp_path / "results"
    extra = "  epochs: 60\nresources: {cpu: 0.5, gpu: 0.25}\nrun: {gpu_fallback: cpu}\n"
    config = study_yaml(tmp_path, "packed", extra, "[0, 1, 2, 3]")
    cluster.submit(config, str(results))
    rows = trial_rows(results, "packed")
    assert len(rows) == 8
    # Only the worker has a (fake) GPU: every trial ran there, on GPU 0, a quarter each.
    assert len({r["node_id"] for r in rows}) == 1
    assert all(r["gpu_ids"] == "0" and r["gpu_share"] == 0.25 for r in rows)
    assert most_at_once(rows) == 4  # 1 GPU / 0.25 (and 2 CPUs / 0.5): four at once
    # `ray start --num-gpus=1` on a machine without CUDA: Ray assigns GPU 0, torch has
    # none, and the study's gpu_fallback: cpu trains on the CPU.
    assert all((r["device"] == "cpu") == on_cpu for r in rows)


@pytest.mark.parametrize("worker", [(2, 0)], indirect=True)
def test_a_study_survives_its_worker_node_dying_mid_study(cluster, worker, tmp_path):
    results = tmp_path / "results"
    config = study_yaml(
        tmp_path, "faulty", "  epochs: 60\nresources: {cpu: 1}\nrun: {max_failures: 3}\n",
        "[0, 1, 2, 3]",
    )
    driver = cluster.submit(config, str(results), wait=False)
    try:
        deadline = time.monotonic() + STUDY_TIMEOUT_S
        # Kill the worker once a cell is stored and a trial is running on the worker.
        while not (list((results / "faulty" / "trials").glob("*.parquet"))
                   and worker.trial_processes()):
            assert driver.poll() is None and time.monotonic() < deadline, "study ended first"
            time.sleep(0.2)
        stored_before = len(trial_rows(results, "faulty"))
        worker.kill()
        out, _ = driver.communicate(timeout=STUDY_TIMEOUT_S)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, out[-4000:]
    rows = trial_rows(results, "faulty")
    assert stored_before < 8 and len(rows) == 8
    assert len({r["cell_id"] for r in rows}) == 8
    assert {r["status"] for r in rows} <= {"complete", "diverged"}
    assert sum(r["retries"] for r in rows) >= 1  # the killed trials ran again ...
    assert len({r["node_id"] for r in rows if r["retries"]}) == 1  # ... on the head
    epochs = pq.read_table(results / "faulty" / "epochs").to_pylist()
    per_cell = {}
    for e in epochs:
        per_cell.setdefault(e["cell_id"], []).append(e["epoch"])
    finished = {r["cell_id"]: r["epochs_run"] for r in rows}
    # No epoch of a killed attempt is kept: each cell has exactly its epochs, once.
    assert {c: sorted(v) for c, v in per_cell.items()} == {
        c: list(range(1, n + 1)) for c, n in finished.items() if n
    }
