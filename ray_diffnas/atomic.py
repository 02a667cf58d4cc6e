"""Atomic file writes: readers (and a crash) never see half a file, and a failed write keeps the old one."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable

from ray_diffnas.errors import DiffNASError


class FileWriteError(DiffNASError, OSError):
    """A file could not be written (read-only folder, full disk, file-size limit); the previous file is intact."""


def create_beside(path: str) -> tuple[int, str]:
    """Creates a new, uniquely named temporary file beside ``path``; returns its descriptor and path.

    Its mode follows the umask, as the file it will replace would (``mkstemp`` makes it private).
    """
    folder, name = os.path.split(path)
    while True:
        tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            return os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], object]) -> Path:
    """Calls ``write(tmp_path)`` on a unique temporary file beside ``path``, then renames it.

    Raises:
        FileWriteError: when the folder or the disk refuses the write; it names the file and the
            cause, and whatever ``path`` held before is left as it was.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = create_beside(str(path))
        os.close(handle)
        write(tmp)
        os.replace(tmp, path)
    except OSError as error:
        kept = "the previous file is intact" if path.exists() else "no earlier version existed"
        raise FileWriteError(
            f"Could not write {str(path)!r}: {error.strerror or error} ({type(error).__name__}); {kept}. "
            f"Make the folder writable or free space on its disk, then save again."
        ) from error
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return path
