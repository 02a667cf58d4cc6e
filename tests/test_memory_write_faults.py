"""A memory write that fails (a read-only folder, a full disk, a file-size limit) says which file and
why, and leaves the previous memory file as it was.

The folder faults are real: a tiny tmpfs mounted for the test, remounted read-only or filled up
(skipped where this process may not mount). The size limit is a real ``RLIMIT_FSIZE`` in a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from ray_diffnas import SearchMemory, UNetSpace
from ray_diffnas.atomic import FileWriteError
from ray_diffnas.searchers.base import MEMORY_FILE
from ray_diffnas.searchers.graph.searcher import GraphDiffusionSearcher

SPACE = UNetSpace(image_size=8)


def _memory(trials: int) -> SearchMemory:
    memory = SearchMemory("rfid", "min")
    for i in range(trials):
        note = os.urandom(128).hex()  # incompressible: the file's size follows the record count
        memory.propose(f"t{i}", {"arch": {"base_channels": 8 * (i + 1)}}, f"c{i}", "random", note=note)
        memory.complete(f"t{i}", {"rfid": 10.0 + i, "training_iteration": 1}, status="completed")
    return memory


@pytest.fixture()
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs of its own."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _assert_kept(path: Path, before: bytes, error: FileWriteError) -> None:
    message = str(error)
    assert str(path) in message and "the previous file is intact" in message
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    assert len(SearchMemory.load(path)[0]) == 2


def test_a_read_only_folder_names_the_file_and_keeps_the_memory(tiny_disk: Path) -> None:
    path = _memory(2).save(tiny_disk / MEMORY_FILE)
    before = path.read_bytes()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    with pytest.raises(FileWriteError, match="Read-only file system") as error:
        _memory(5).save(path)
    _assert_kept(path, before, error.value)


def test_a_full_disk_names_the_file_and_keeps_the_memory(tiny_disk: Path) -> None:
    path = _memory(2).save(tiny_disk / MEMORY_FILE)
    before = path.read_bytes()
    with pytest.raises(FileWriteError, match="No space left on device") as error:
        _memory(3000).save(path)  # a few hundred KiB: more than the disk holds
    _assert_kept(path, before, error.value)


def test_a_searcher_whose_checkpoint_folder_is_full_says_so(tiny_disk: Path) -> None:
    """Tune's save of the searcher (``save_to_dir``) fails with the same clear error."""
    searcher = GraphDiffusionSearcher(space=SPACE, metric="rfid", mode="min", warmup=2, seed=0)
    searcher.suggest("t0")
    searcher.save_to_dir(str(tiny_disk), "s1")
    before = (tiny_disk / MEMORY_FILE).read_bytes()
    (tiny_disk / "filler").write_bytes(b"\0" * (256 * 1024 - 3 * len(before)))
    searcher.memory = _memory(3000)
    with pytest.raises(FileWriteError, match=MEMORY_FILE):
        searcher.save_to_dir(str(tiny_disk), "s2")
    assert (tiny_disk / MEMORY_FILE).read_bytes() == before


@pytest.mark.slow
def test_a_file_size_limit_names_the_file_and_keeps_the_memory(tmp_path: Path) -> None:
    path = _memory(2).save(tmp_path / MEMORY_FILE)
    before = path.read_bytes()
    child = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_memory_write_faults import _memory
        from ray_diffnas.atomic import FileWriteError
        resource.setrlimit(resource.RLIMIT_FSIZE, ({len(before) + 512}, resource.RLIM_INFINITY))
        try:
            _memory(3000).save({str(path)!r})
        except FileWriteError as error:
            print(error)
    """)
    run = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert str(path) in run.stdout and "File too large" in run.stdout and "the previous file is intact" in run.stdout
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
