"""Fixtures for every test and docstring example: a cache folder of the session's own, and under
pytest-xdist a Ray temp folder of each worker's own."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Each xdist worker (and every driver its tests start) keeps its Ray sessions in a folder of its own:
    two Rays starting at once in one /tmp/ray race on its session links."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        folder = Path(tempfile.gettempdir()) / f"ray_diffnas_tests_{worker}"
        folder.mkdir(exist_ok=True)
        os.environ["RAY_TMPDIR"] = str(folder)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh RFID cache for the session (classifiers and reference stats are built once)."""
    path = tmp_path_factory.mktemp("ray_diffnas_cache")
    os.environ["RAY_DIFFNAS_CACHE"] = str(path)
    return path
