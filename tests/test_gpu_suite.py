"""The prepared GPU run (bench/gpu_suite.py) works end to end at toy sizes on the CPU, with
its pieces: the resampled full-size MNIST (bench/mnist_full.py) and the stripped wheels
the device machine installs (bench/gpu_wheels.py). Figures are never asserted here."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import MNIST5K

from bench.gpu_wheels import record_line, strip_wheel
from bench.mnist_full import TEST_COUNTS, TRAIN_COUNTS, build, write
from trainables.datasets import load_dataset

ROOT = Path(__file__).resolve().parents[1]
needs_mnist = pytest.mark.skipif(not MNIST5K.exists(),
                                 reason=f"needs the real MNIST subset at {MNIST5K}")


@needs_mnist
@pytest.mark.slow
def test_the_resampled_mnist_has_mnists_shape_and_counts_and_no_test_image_from_training(
        tmp_path):
    sizes = write(tmp_path, MNIST5K)
    assert sizes == {"train": 60000, "test": 10000}
    assert "NOT real MNIST" in (tmp_path / "MNIST" / "RESAMPLED.txt").read_text()
    images = load_dataset("mnist", tmp_path, {})  # the preset's own loader reads it
    assert images.x_train.shape == (60000, 1, 28, 28) and images.x_test.shape[0] == 10000
    assert np.bincount(images.y_train).tolist() == list(TRAIN_COUNTS)
    assert np.bincount(images.y_test).tolist() == list(TEST_COUNTS)
    with np.load(MNIST5K) as data:
        x, y = data["x"], data["y"].astype(np.int64)
    split = build(x, y)  # the same seed: the same sources
    assert not set(split["train"][2]) & set(split["test"][2])
    assert (y[split["test"][2]] == split["test"][1]).all()


def test_a_stripped_wheel_keeps_the_rest_with_a_matching_record(tmp_path):
    wheel = tmp_path / "ray-1.0-py3-none-any.whl"
    files = {"ray/__init__.py": b"x = 1\n", "ray/jars/ray_dist.jar": b"java",
             "ray/rllib/a.py": b"", "ray/tune/b.py": b"y = 2\n"}
    with zipfile.ZipFile(wheel, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr("ray-1.0.dist-info/RECORD", "stale\n")
    strip_wheel(wheel)
    with zipfile.ZipFile(wheel) as z:
        names = sorted(z.namelist())
        record = z.read("ray-1.0.dist-info/RECORD").decode().splitlines()
    assert names == ["ray-1.0.dist-info/RECORD", "ray/__init__.py", "ray/tune/b.py"]
    assert record == [record_line("ray/__init__.py", files["ray/__init__.py"]),
                      record_line("ray/tune/b.py", files["ray/tune/b.py"]),
                      "ray-1.0.dist-info/RECORD,,"]


@needs_mnist
@pytest.mark.ray
@pytest.mark.slow
def test_the_gpu_suite_runs_every_section_at_toy_sizes_on_the_cpu(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bench.gpu_suite", "--tiny", "--device", "cpu",
                           "--out", str(tmp_path), "--budget-s", "3600"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "gpu_suite.md").read_text()
    for section in ("peak", "stacked", "bf16", "pack", "grid", "Targets"):
        assert f"## {section}" in report, section
    assert "failed:" not in report and "skipped" not in report, report
    assert "| 2 | 16 | bf16 | eager (no CUDA) |" in report  # graphs asked, none on a CPU
    assert "2 trials a GPU × stacked K=2 |" in report
    grid = report.split("## grid")[1].split("## Targets")[0]
    assert "| tiny_grid.yaml | 12 / 12 | 0 |" in grid, grid  # every cell stored, none failed
    assert "one GPU (H100)   ~" in report  # describe's estimate beside the measurement
    targets = report.split("## Targets")[1]
    assert targets.count("n/a (tiny sizes)") == 4, targets


def test_a_shift_moves_each_image_with_zeros_filling_in():
    from bench.mnist_full import shifted

    x = (np.arange(4 * 6 * 6).reshape(4, 6, 6) % 250 + 1).astype(np.uint8)
    out = shifted(x, np.random.default_rng(3))
    dy, dx = np.random.default_rng(3).integers(-2, 3, (2, 4))  # the shifts it drew
    for i in range(4):
        want = np.zeros((6, 6), np.uint8)
        for r in range(6):
            for c in range(6):
                if 0 <= r - dy[i] < 6 and 0 <= c - dx[i] < 6:
                    want[r, c] = x[i, r - dy[i], c - dx[i]]
        assert (out[i] == want).all(), (i, dy[i], dx[i])
