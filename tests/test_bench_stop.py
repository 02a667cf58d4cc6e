"""``bench-table`` stopped with Ctrl-C keeps its finished runs and never a cut-short one as if finished; a
searcher that runs out of new architectures before its budget ends a complete run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ray_diffnas.app.cli import main
from ray_diffnas.bench.code_version import code_version
from ray_diffnas.bench.harness import RUN_METADATA_KEY
from ray_diffnas.spaces.nb201 import NB201Space
from ray_diffnas.spaces.unet_space import UNetSpace


def _nb201_table(path: Path, rows: int = 2000) -> Path:
    space, rng = NB201Space(), np.random.default_rng(0)
    cells = {space.sample(rng).to_string() for _ in range(rows)}
    pd.DataFrame({"arch": sorted(cells), "acc": [float(len(c) % 17) for c in sorted(cells)]}).to_csv(path, index=False)
    return path


def _bench_command(table: Path, output: Path, budget: int) -> list[str]:
    return [
        sys.executable, "-m", "ray_diffnas", "bench-table", "--table", str(table), "--space", "nb201",
        "--objective", "acc:max", "--searcher", "random", "--seeds", "2", "--budget", str(budget),
        "--output", str(output),
    ]  # fmt: skip


@pytest.mark.slow
def test_ctrl_c_keeps_finished_runs_and_not_the_one_it_cut_short(tmp_path: Path) -> None:
    table, output = _nb201_table(tmp_path / "table.csv"), tmp_path / "bench"
    command = _bench_command(table, output, budget=60)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kept_first, second = output / "runs" / "random-seed0.parquet", output / "tune" / "random-seed1"
    deadline = time.monotonic() + 240
    while not (kept_first.is_file() and second.is_dir()):  # the second run has started
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the second run never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # Ctrl-C: Tune ends the run in flight without an error
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 130, stderr
    # Ctrl-C cuts the second run short (not kept), or lands as its last trials finish (kept): either way
    # the command stops there, with no summary
    cut_short = "random seed 1 ended after" in stderr
    assert cut_short or "random seed 1 spent its budget as Ctrl-C came, and is kept" in stderr, stderr
    assert "run the same command again" in stderr
    assert (output / "runs" / "random-seed1.parquet").exists() == (not cut_short)
    assert len(pd.read_parquet(kept_first)) == 60
    kept_meta = pq.read_schema(kept_first).metadata[RUN_METADATA_KEY]
    assert json.loads(kept_meta)["code"] == code_version()  # which code made it, recorded beside it
    assert not (output / "summary.json").exists()  # no summary of runs that did not all finish

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300, env=os.environ)
    assert rerun.returncode == 0, rerun.stderr
    assert "random seed 0: kept from" in rerun.stderr  # the finished run is reused, not run again
    summary = json.loads((output / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and summary["searchers"]["random"]["queries"] == [60, 60]


@pytest.mark.slow
def test_a_searcher_that_runs_out_of_architectures_ends_a_complete_run(ray_session, tmp_path: Path) -> None:
    tiny = UNetSpace(
        image_size=8,
        base_channels=(8, 16),
        channel_mults=(1,),
        num_levels=(2,),
        num_res_blocks=(1, 2),
        attention_max_resolution=0,
        num_heads=(1,),
        dropout=(0.0,),
        mid_attention=(False,),
    )
    archs = tiny.enumerate()
    assert len(archs) == 8  # 2 widths x 2 x 2 blocks per level
    (tmp_path / "space.json").write_text(json.dumps(tiny.to_dict()))
    table = tmp_path / "table.csv"
    rows = [{"arch": json.dumps(a.to_dict()), "rfid": 1.0 + i} for i, a in enumerate(archs)]
    pd.DataFrame(rows).to_csv(table, index=False)
    output = tmp_path / "bench"
    code = main(
        ["bench-table", "--table", str(table), "--space", str(tmp_path / "space.json"), "--objective", "rfid:min",
         "--searcher", "evolution", "--seeds", "1", "--budget", "20", "--output", str(output)]
    )  # fmt: skip
    assert code == 0
    run = pd.read_parquet(output / "runs" / "evolution-seed0.parquet")
    assert len(run) == 8 and run["regret"].iloc[-1] == 0  # every architecture tried once, then finished
    assert json.loads((output / "summary.json").read_text())["searchers"]["evolution"]["queries"] == [8]
