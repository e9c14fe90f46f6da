"""How soon `adstudy` answers (issue 15): seconds to `submit`'s first line and to a whole
`describe` of the quickstart, against two baselines measured in the same run: starting
Python, and importing torch and Ray Tune (what the first line used to wait for).

    python -m bench.cli_latency [--rounds 5]

Rounds interleave the measurements (a busy machine slows them alike); the median is shown,
in wall seconds and in the CPU seconds the process used (user + system: what an idle
machine's wall time would be, nearly, for these single-threaded starts). `describe` is
measured with its checks remembered (a second describe of the same cells: no torch) and
with a cold cache (the checks import torch and probe every model).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "configs" / "quickstart.yaml")


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def first_line_s(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds from starting ``argv`` to its first line on stdout (it is
    stopped there)."""
    cpu, started = cpu_s(), time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    proc.stdout.readline()
    seconds = time.perf_counter() - started
    proc.kill()
    proc.wait()
    return seconds, cpu_s() - cpu  # the CPU includes the kill's few milliseconds


def whole_s(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds ``argv`` takes to finish (it must succeed)."""
    cpu, started = cpu_s(), time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, cpu_s() - cpu


def measurements(scratch: Path) -> dict[str, Callable[[int], tuple[float, float]]]:
    python = [sys.executable]
    cli = [sys.executable, "-m", "study.cli"]
    results = ["--results", str(scratch / "results")]
    warm = {**os.environ, "ADSTUDY_CACHE": str(scratch / "warm")}
    whole_s(cli + ["describe", QUICKSTART, *results], warm)  # remembers the checks

    def cold(round_: int) -> dict[str, str]:
        return {**os.environ, "ADSTUDY_CACHE": str(scratch / f"cold{round_}")}

    return {
        "python starts (baseline)": lambda r: whole_s(python + ["-c", "pass"], warm),
        "import torch, ray.tune (baseline)": lambda r: whole_s(
            python + ["-c", "import torch, ray.tune"], warm),
        "submit: first line": lambda r: first_line_s(
            cli + ["submit", QUICKSTART, *results, "--dry-run"], cold(r)),
        "describe, checks remembered": lambda r: whole_s(
            cli + ["describe", QUICKSTART, *results], warm),
        "describe, cold cache": lambda r: whole_s(
            cli + ["describe", QUICKSTART, *results], cold(r)),
    }


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--rounds", type=int, default=5)
    rounds = args.parse_args().rounds
    with tempfile.TemporaryDirectory() as scratch:
        runs = measurements(Path(scratch))
        seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        for r in range(rounds):
            for name, run in runs.items():
                seconds[name].append(run(r))
    wall = {n: statistics.median(w for w, _ in v) for n, v in seconds.items()}
    cpu = {n: statistics.median(c for _, c in v) for n, v in seconds.items()}
    python, imports = "python starts (baseline)", "import torch, ray.tune (baseline)"
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {rounds} rounds, "
          "medians")
    print("| measurement | wall s | CPU s | CPU vs python start | CPU vs import torch, ray |")
    print("|---|---|---|---|---|")
    for name in runs:
        print(f"| {name} | {wall[name]:.2f} | {cpu[name]:.2f} | "
              f"{cpu[name] / cpu[python]:.1f}x | {cpu[name] / cpu[imports]:.2f}x |")


if __name__ == "__main__":
    main()
