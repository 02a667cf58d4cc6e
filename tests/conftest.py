"""Shared fixtures: the digits data set and one local Ray per test session (the cache folder: ../conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits():
    from ray_diffnas.data.datasets import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def ray_session():
    import ray

    if ray.is_initialized():  # an earlier test in this worker started Ray its own way (e.g. bench-table's run)
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield ray
    ray.shutdown()
