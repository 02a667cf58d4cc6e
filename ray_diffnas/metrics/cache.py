"""The on-disk cache (feature classifiers, reference statistics): atomic writes, file locks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from ray_diffnas.atomic import atomic_write

CACHE_ENV = "RAY_DIFFNAS_CACHE"


def cache_dir() -> Path:
    """``$RAY_DIFFNAS_CACHE``, else ``~/.cache/ray_diffnas``; created on first use."""
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ray_diffnas").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_lock(path: Path) -> FileLock:
    """An exclusive lock beside ``path``, so that concurrent trials build a cache entry once."""
    return FileLock(str(path.with_name(path.name + ".lock")))


def atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))
