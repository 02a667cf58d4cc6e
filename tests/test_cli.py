"""End to end: the ray-diffnas command runs a real (tiny) search and writes its results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq


def test_tiny_search_writes_leaderboard_results_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = subprocess.run(
        [sys.executable, "-m", "ray_diffnas.cli", "search", "--dataset", "digits", "--num-samples", "3",
         "--max-iterations", "2", "--steps-per-iteration", "15", "--rfid-samples", "100", "--sampler-steps", "3",
         "--output", str(out), "--seed", "1"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Leaderboard" in run.stdout and "Best trial" in run.stdout
    table = pq.read_table(out / "results.parquet").to_pandas()
    assert len(table) == 3
    assert set(table["status"]) <= {"completed", "stopped"}
    assert table["best_rfid"].is_monotonic_increasing  # sorted best first
    assert {"arch_key", "arch.channel_mult", "train.lr", "rfid", "latency_ms", "params_m", "rfid_curve"} <= set(table)
    assert all(len(curve) == it for curve, it in zip(table["rfid_curve"], table["training_iteration"]))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_rfid"] == table["best_rfid"].iloc[0]
    assert summary["untrained_rfid"] > summary["best_rfid"]
    for name in ("search.png", "best_samples.png"):
        assert (out / name).stat().st_size > 10_000
