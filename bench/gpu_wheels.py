"""What bench/gpu_suite.py needs on a GPU machine of the device tool that its image lacks.

The device machines (Python 3.12, their own torch 2.11, numpy, pandas, pyarrow, scipy,
scikit-learn, statsmodels, matplotlib, filelock, tqdm, pyyaml ...) have no package index,
and what travels with the working tree is at most 64 MiB. `adstudy submit` needs Ray,
whose wheel is 79 MB: this downloads the wheels here (the versions this .venv runs),
strips Ray's wheel of what a local Ray Tune never loads (the Java jar, the dashboard's web
client, RLlib, Serve, Ray LLM: 79 -> ~40 MB) and writes them to ``.whl/``; it copies the
MNIST subset the benchmarks read to ``.gpudata/``; both go into git's exclude file so they
travel only when a device call names them in ``carry``. Run it in the checkout the device
tool sends (docs/gpu.md), with internet (the package registry) here.

    python -m bench.gpu_wheels [--python-version 3.12] [--dest .whl]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

from bench.common import MNIST5K, ROOT

# Imported by `adstudy submit` and its trials, absent from the device image (KINDS.md's
# package list, 2026-11-17): Ray and what Ray, Ray Tune and optuna import.
# (Those it imports, found by importing study.cli, study.runner, study.ray_trial,
# trainables.run and trainables.train_stack; kornia is imported only by the SSIM losses.)
PACKAGES = ("ray", "jsonschema", "jsonschema-specifications", "referencing", "rpds-py",
            "jsonpointer", "rfc3339-validator", "optuna", "colorlog", "pydantic",
            "pydantic-core", "annotated-types", "typing-inspection", "tensorboardX")
# Parts of Ray's wheel a local Ray Tune run never imports.
RAY_DROPS = ("ray/jars/", "ray/dashboard/client/build/", "ray/rllib/", "ray/serve/",
             "ray/llm/")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64",
             "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64")
LIMIT = 58 * 2**20  # of the device tool's 64 MiB, leaving room for the repository


def download(dest: Path, python: str) -> None:
    """Each package at the version this environment runs, as a wheel for ``python``."""
    pins = [f"{name}=={version(name)}" for name in PACKAGES]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    "--only-binary=:all:", "--python-version", python, "--implementation",
                    "cp", *platforms, "-d", str(dest), *pins], check=True)


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def strip_wheel(wheel: Path, drops: tuple[str, ...] = RAY_DROPS) -> None:
    """Rewrites ``wheel`` without the files under ``drops`` (RECORD rewritten to match)."""
    stripped = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(stripped, "w",
                                                        zipfile.ZIP_DEFLATED, compresslevel=9
                                                        ) as out:
        kept = [i for i in src.infolist() if not i.filename.startswith(drops)]
        record = next(i.filename for i in kept if i.filename.endswith(".dist-info/RECORD"))
        lines = []
        for info in kept:
            if info.filename == record:
                continue
            data = src.read(info)
            out.writestr(info, data)
            lines.append(record_line(info.filename, data))
        out.writestr(record, "\n".join([*lines, f"{record},,"]) + "\n")
    stripped.replace(wheel)


def exclude(paths: list[str]) -> None:
    """Adds ``paths`` to the checkout's git exclude file (the device tool's way to carry)."""
    common = subprocess.run(["git", "rev-parse", "--git-common-dir"], cwd=ROOT, text=True,
                            capture_output=True, check=True).stdout.strip()
    info = (ROOT / common / "info").resolve()
    info.mkdir(parents=True, exist_ok=True)
    listed = (info / "exclude").read_text().split() if (info / "exclude").exists() else []
    with open(info / "exclude", "a") as f:
        f.writelines(f"{p}\n" for p in paths if p not in listed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python-version", default="3.12", help="the device's Python")
    parser.add_argument("--dest", type=Path, default=ROOT / ".whl")
    args = parser.parse_args()
    shutil.rmtree(args.dest, ignore_errors=True)
    args.dest.mkdir(parents=True)
    download(args.dest, args.python_version)
    for wheel in args.dest.glob("ray-*.whl"):
        strip_wheel(wheel)
    data = ROOT / ".gpudata"
    data.mkdir(exist_ok=True)
    shutil.copy(MNIST5K, data / "mnist5k.npz")
    exclude(["/.whl/", "/.gpudata/"])
    total = sum(p.stat().st_size for p in [*args.dest.iterdir(), *data.iterdir()])
    print(f"{args.dest}: {len(list(args.dest.iterdir()))} wheels; with .gpudata "
          f"{total / 2**20:.1f} MiB to carry (limit used here: {LIMIT / 2**20:.0f} MiB)")
    if total > LIMIT:
        raise SystemExit("error: too large for the device tool's 64 MiB: drop more of Ray")


if __name__ == "__main__":
    main()
