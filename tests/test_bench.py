"""The benchmarks run end to end at a tiny scale and print their ratio tables (their
figures are for bench/RESULTS.md, never asserted here)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run_bench(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_throughput_prints_a_ratio_per_column():
    out = run_bench("bench.throughput", "--device", "cpu", "--batch-sizes", "32",
                    "--samples", "128", "--stack", "2", "--rounds", "2")
    (row,) = [line for line in out.splitlines() if line.startswith("| 32 |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == 6  # batch, baseline, ours + ratio, stacked K=2 + ratio
    assert all(re.fullmatch(r"\d+\.\d\dx", c) for c in (cells[3], cells[5])), row
    assert float(cells[3].rstrip("x")) > 0


def test_flops_prints_the_share_of_peak_for_each_model_and_the_stack():
    out = run_bench("bench.flops", "--device", "cpu", "--batch-size", "16", "--stack", "2",
                    "--peak-size", "512")
    assert "measured fp32 matmul peak" in out
    assert re.search(r"\| cae \| \(1, 28, 28\) \| 6\.629 \|", out), out
    assert re.search(r"\| cae, stacked K=2 \|.*%", out), out
