"""Tune's storage on a local disk with every file written atomically, so that a killed driver leaves
no file half-written.

Tune copies its driver folder (experiment state, searcher state, trial results) to ``storage_path``
every few seconds, and trials upload their checkpoints there, through a pyarrow filesystem. The
local one writes each file in place: a SIGKILL in the middle of a copy leaves a truncated
``experiment_state-*.json`` or ``tuner.pkl``, and the next resume fails or starts the run over. This
filesystem writes each file beside its target and renames it over the target once complete.

Pass it where Tune takes a filesystem::

    from ray_diffnas import atomic_local_filesystem
    tune.Tuner(..., run_config=tune.RunConfig(storage_path="/abs/path", storage_filesystem=atomic_local_filesystem()))
    tune.Tuner.restore("/abs/path/name", trainable, storage_filesystem=atomic_local_filesystem())
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.fs as pafs

from ray_diffnas.atomic import create_beside
from ray_diffnas.errors import DiffNASError

PARTIAL_WRITE = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")  # the names create_beside gives


class _ReplaceOnClose:
    """A binary file written beside ``path`` and renamed over it on close; a failed write leaves ``path`` alone."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        handle, self.tmp = create_beside(path)
        self._file = os.fdopen(handle, "wb")
        self._failed = False

    def write(self, data: Any) -> int:
        try:
            return self._file.write(data)
        except BaseException:
            self._failed = True
            raise

    def flush(self) -> None:
        self._file.flush()

    def tell(self) -> int:
        return self._file.tell()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self._file.close()
        except BaseException:
            self._failed = True
            raise
        finally:
            if self._failed:
                os.remove(self.tmp)
            else:
                os.replace(self.tmp, self.path)


class AtomicLocalHandler(pafs.FSSpecHandler):
    """fsspec's local filesystem for pyarrow, whose output streams replace their file only when complete."""

    def __init__(self) -> None:
        super().__init__(fsspec.filesystem("file"))

    def __reduce__(self) -> tuple[Any, ...]:  # Tune ships its storage filesystem to trial workers
        return (AtomicLocalHandler, ())

    def open_output_stream(self, path: str, metadata: Any) -> pa.PythonFile:
        return pa.PythonFile(_ReplaceOnClose(path), mode="w")


def atomic_local_filesystem() -> pafs.PyFileSystem:
    """A pyarrow filesystem over the local disk that never leaves a file half-written (see the module doc).

    Example:
        >>> import pathlib, tempfile
        >>> fs = atomic_local_filesystem()
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = str(pathlib.Path(folder, "state.json"))
        ...     with fs.open_output_stream(path) as stream:
        ...         _ = stream.write(b'{"done": true}')
        ...     pathlib.Path(path).read_text()
        '{"done": true}'
    """
    return pafs.PyFileSystem(AtomicLocalHandler())


def remove_partial_writes(folder: str | os.PathLike) -> int:
    """Deletes the temporary files that writes cut off by a kill left under ``folder``; returns how many.

    Only for a folder no live process writes to (a search being resumed).
    """
    stale = [p for p in Path(folder).rglob(".*.tmp") if PARTIAL_WRITE.fullmatch(p.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def make_output_folder(path: Path, flag: str = "--output") -> Path:
    """Creates a command's output folder (and its parents), or says plainly why it cannot.

    Raises:
        DiffNASError: when ``path`` is a file, or cannot be created (permissions, a read-only disk).
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DiffNASError(f"{flag} {str(path)!r} is a file, not a folder; pass a folder.") from None
    except OSError as error:
        raise DiffNASError(
            f"{flag} {str(path)!r} cannot be created ({error.strerror or error}); pass a folder you can write to."
        ) from None
    return path
