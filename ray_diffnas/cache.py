"""The on-disk cache (feature classifiers, reference statistics): atomic writes, file locks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch

CACHE_ENV = "RAY_DIFFNAS_CACHE"


def cache_dir() -> Path:
    """``$RAY_DIFFNAS_CACHE``, else ``~/.cache/ray_diffnas``; created on first use."""
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ray_diffnas").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock beside ``path``, so that concurrent trials build a cache entry once."""
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Writes to a temporary file, then renames: readers never see half a file."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(handle)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
