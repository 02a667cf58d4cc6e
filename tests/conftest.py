"""Shared fixtures: one cache folder and one local Ray per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh RFID cache for the session (classifiers and reference stats are built once)."""
    path = tmp_path_factory.mktemp("ray_diffnas_cache")
    os.environ["RAY_DIFFNAS_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def digits():
    from ray_diffnas.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def ray_session():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield ray
    ray.shutdown()
