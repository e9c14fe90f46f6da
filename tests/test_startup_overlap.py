"""A submission checks its cells in a child process while the driver starts Ray
(study.submit.run_plan, study.check_process): the checks and Ray's start overlap, nothing
is written and no trial starts before the checks passed, and a refused spec leaves no Ray
and no folder behind. Each test drives the product in
a fresh Python process, so it starts its own local Ray (the session's ray_local fixture
would be reused), and reads the events it logs (study.check_process, study.runner).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The driver: events as JSON lines (time, thread, logger, message), then the outcome.
DRIVER = """
import json, logging, sys, time
events = []

class Keep(logging.Handler):
    def emit(self, record):
        events.append([record.created, record.threadName, record.name, record.getMessage()])

for name in ("study.check_process", "study.runner"):
    logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger(name).addHandler(Keep())
import study.runner  # loaded ahead, as in a notebook: Ray's start begins at once
from study.errors import SpecError
from study.spec import parse_spec
from study.submit import Options, submit

if sys.argv[3] == "torch":  # loaded already, as in a notebook: the driver checks at once
    import torch  # noqa: F401
spec = parse_spec(open(sys.argv[1]).read())
outcome = {}
try:
    progress = submit(spec, results=sys.argv[2], options=Options(dry_run=sys.argv[3] == "dry"))
    outcome["counts"] = dict(progress.counts)
except SpecError as err:
    outcome["error"] = str(err)
import ray
outcome["ray_up_after"] = ray.is_initialized()
import os
print(json.dumps({"events": events, "pid": os.getpid(), **outcome}))
"""

STUDY = """
study: overlap
compare:
  loss: [mse, lmse]
fixed:
  dataset: digits
  normal_class: 1
  model: cae
  latent_dim: 4
  optimizer: adam
  lr: 0.001
  batch_size: 64
  epochs: 1
  max_train: 64
  max_test: 64
resources:
  cpu: 1
"""

# The data file is not under the data root, and a loss parameter no loss takes.
REFUSED = """
study: refused
compare:
  loss: [mse, {name: lmse, bogus: 1}]
fixed:
  dataset: {name: npz, path: absent.npz}
  model: cae
  epochs: 1
run:
  data_root: %s
"""


def drive(tmp_path: Path, text: str, mode: str = "run") -> dict:
    config = tmp_path / "study.yaml"
    config.write_text(text)
    env = {**os.environ, "ADSTUDY_CACHE": str(tmp_path / "cache")}  # the checks run cold
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(config), str(tmp_path / "results"), mode],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def times(events: list, message: str) -> list[tuple[float, str]]:
    return [(t, thread) for t, thread, _, text in events if text.startswith(message)]


def checks_ran(events: list) -> list[tuple[float, float, int, int]]:
    """(began, ended, pid, problems) of each checks process, from its event."""
    found = [re.match(r"cell checks ran from ([\d.]+) to ([\d.]+) in pid (\d+): (\d+) problems",
                      text) for _, _, _, text in events]
    return [(float(m[1]), float(m[2]), int(m[3]), int(m[4])) for m in found if m]


@pytest.mark.ray
@pytest.mark.slow
def test_the_checks_run_while_ray_starts_and_before_anything_is_written(tmp_path):
    out = drive(tmp_path, STUDY)
    assert out["counts"]["complete"] == 2 and not out["ray_up_after"]
    [(began, ended, pid, problems)] = checks_ran(out["events"])
    [(ray_began, _)], [(ray_up, _)] = times(out["events"], "Ray start began"), times(
        out["events"], "Ray up")
    assert problems == 0 and pid != out["pid"]  # another process ...
    assert began < ray_up and ray_began < ended  # ... at the same time as Ray's start
    # study.json is written once the cluster is up and the checks passed, not before
    written = (tmp_path / "results" / "overlap" / "study.json").stat().st_mtime
    assert written >= max(ended, ray_up) - 0.01
    again = drive(tmp_path, STUDY.replace("study: overlap", "study: again"))
    assert again["counts"]["complete"] == 2
    assert not checks_ran(again["events"])  # known to pass: checked in the driver, no process


@pytest.mark.ray
def test_a_refused_spec_is_said_by_field_and_leaves_no_ray_and_no_folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    out = drive(tmp_path, REFUSED % data)
    error = out["error"]
    assert "path 'absent.npz' not found" in error  # the data file, by name
    assert "'bogus'" in error and "choose from" in error  # the parameter, and the choices
    assert checks_ran(out["events"])[0][3] == 2
    assert times(out["events"], "Ray up")  # Ray was started during the checks ...
    assert not out["ray_up_after"]  # ... and shut down again
    assert not (tmp_path / "results").exists()  # no results root, no study.json


@pytest.mark.ray
def test_a_refusal_by_the_cli_leaves_no_empty_ray_log_behind(tmp_path):
    """The CLI moves Ray's output into a temp-dir log while Ray runs; a spec the checks
    refuse after Ray's start leaves no such file (Ray said nothing worth keeping)."""
    data = tmp_path / "data"
    data.mkdir()
    name = f"refused{os.getpid()}"  # a name no other test's log can have
    config = tmp_path / "study.yaml"
    config.write_text((REFUSED % data).replace("study: refused", f"study: {name}"))
    env = {**os.environ, "ADSTUDY_CACHE": str(tmp_path / "cache")}  # checked in a child
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, "-m", "study.cli", "submit", str(config), "--results",
         str(tmp_path / "results")], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 2 and "path 'absent.npz' not found" in done.stderr
    assert "starting a local Ray" in done.stdout  # refused after Ray's start began
    assert not list(Path(tempfile.gettempdir()).glob(f"adstudy-{name}-*.log"))


def test_a_dry_run_checks_in_the_driver_and_starts_no_ray(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    out = drive(tmp_path, REFUSED % data, mode="dry")
    assert "path 'absent.npz' not found" in out["error"]
    good = drive(tmp_path, STUDY, mode="dry")
    assert "error" not in good
    for each in (out, good):
        assert not each["events"] and not each["ray_up_after"]
    assert not (tmp_path / "results").exists()


def test_with_torch_loaded_a_refused_spec_is_said_before_ray_starts(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    out = drive(tmp_path, REFUSED % data, mode="torch")
    assert "path 'absent.npz' not found" in out["error"] and "'bogus'" in out["error"]
    assert not out["events"]  # no checks process, no Ray started
    assert not (tmp_path / "results").exists()
