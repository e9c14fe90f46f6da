"""Shared fixtures: the real MNIST subset, a session-wide local Ray, tiny specs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MNIST5K = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist5k.npz"
os.environ.setdefault("MPLBACKEND", "Agg")


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
