"""Fixtures for every test and docstring example: a cache folder of the session's own."""

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
