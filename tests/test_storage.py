"""The atomic storage filesystem Tune writes a search's --output through: a process killed in the
middle of a write (a real SIGKILL) leaves the previous file whole, and the leftover is cleaned up."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.fs as pafs

from ray_diffnas.app.storage import atomic_local_filesystem, remove_partial_writes


def test_a_writer_killed_mid_file_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "experiment_state.json"
    target.write_text('{"trials": 3}')
    ready = tmp_path / "half-written"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import pathlib, time
        from ray_diffnas.app.storage import atomic_local_filesystem
        stream = atomic_local_filesystem().open_output_stream({str(target)!r})
        stream.write(b'{{"trials": [')  # half of the new state
        stream.flush()
        pathlib.Path({str(ready)!r}).touch()
        time.sleep(60)
    """),
        ]
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline and writer.poll() is None:
            time.sleep(0.05)
        assert ready.exists(), "the writer never got half way"
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    assert target.read_text() == '{"trials": 3}'
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".experiment_state.json.")
    assert remove_partial_writes(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiment_state.json", "half-written"]


def test_tune_can_copy_folders_through_it_and_ship_it_to_workers(tmp_path: Path) -> None:
    source = tmp_path / "driver_artifacts"
    (source / "trial_0").mkdir(parents=True)
    (source / "search_gen_state.json").write_text("{}")
    (source / "trial_0" / "result.json").write_text('{"rfid": 3.0}\n')
    filesystem = pickle.loads(pickle.dumps(atomic_local_filesystem()))  # as Tune sends it to a trial
    pafs.copy_files(str(source), str(tmp_path / "storage"), destination_filesystem=filesystem)
    copied = sorted(str(p.relative_to(tmp_path / "storage")) for p in (tmp_path / "storage").rglob("*"))
    assert copied == ["search_gen_state.json", "trial_0", "trial_0/result.json"]
    assert (tmp_path / "storage" / "trial_0" / "result.json").stat().st_mode & 0o044  # readable as the umask says
