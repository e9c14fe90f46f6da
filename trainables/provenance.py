"""Code and library versions and times recorded with every trial and study."""

from __future__ import annotations

import datetime
import functools
import subprocess
from importlib import metadata
from pathlib import Path


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


@functools.cache
def git_sha() -> str:
    """The commit of the code that ran, '' outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


@functools.cache
def versions() -> dict[str, str]:
    return {
        "adstudy_version": _version("adstudy"),
        "torch_version": _version("torch"),
        "ray_version": _version("ray"),
        "git_sha": git_sha(),
    }


def now() -> str:
    """The current UTC time as stored (ISO 8601, seconds)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
