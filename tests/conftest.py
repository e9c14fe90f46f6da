"""Shared fixtures: the real MNIST subset, a session-wide local Ray, and the markers.

Markers (pyproject.toml): ``ray`` on every test that starts Ray (added here to every test
using the ``ray_local`` fixture; modules that start their own Ray mark themselves),
``slow`` on every test that trains for more than a second, ``cluster`` on multi-node
tests. ``pytest -m "not ray and not slow"`` is the quick loop while developing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MNIST5K = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist5k.npz"
os.environ.setdefault("MPLBACKEND", "Agg")
# One OpenMP thread for torch in the tests and every process they start (drivers, bench
# runs; Ray gives its workers one already): the tensors are tiny, and on a shared 2-core
# machine a second thread spin-waits for a busy core (bench.flops: 41 s with two threads,
# 7 s with one). Set before torch is imported anywhere in the session.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "ray_local" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)


@pytest.fixture
def mnist5k(monkeypatch) -> Path:
    """../shared/data/mnist5k.npz (5,000 real MNIST images), its folder as the data root
    ($ADSTUDY_DATA, which the smoke presets read it from); tests skip where it is absent."""
    if not MNIST5K.exists():
        pytest.skip(f"real MNIST subset not found at {MNIST5K} (shared/ data not present)")
    monkeypatch.setenv("ADSTUDY_DATA", str(MNIST5K.parent))
    return MNIST5K


@pytest.fixture(scope="session")
def ray_local():
    """One real local Ray for the whole test session (2 CPUs), shut down at the end."""
    import ray

    from study.runner import init_ray

    if not ray.is_initialized():
        init_ray(None, num_cpus=2)
    yield ray
    ray.shutdown()
