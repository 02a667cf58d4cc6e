"""End to end: the ray-diffnas command runs a real (tiny) search and writes its results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ray_diffnas.app.job_env import JOB_CONFIG_ENV

pytestmark = pytest.mark.slow  # whole searches, Ray clusters or killed drivers: minutes


def test_tiny_search_writes_leaderboard_results_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "ray_diffnas",
            "search",
            "--dataset",
            "digits",
            "--num-samples",
            "3",
            "--max-iterations",
            "2",
            "--steps-per-iteration",
            "15",
            "--rfid-samples",
            "100",
            "--sampler-steps",
            "3",
            "--output",
            str(out),
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Leaderboard" in run.stdout and "Best trial" in run.stdout
    table = pq.read_table(out / "results.parquet").to_pandas()
    assert len(table) == 3
    assert set(table["status"]) <= {"completed", "stopped"}
    assert table["best_rfid"].is_monotonic_increasing  # sorted best first
    assert {"arch_key", "arch.channel_mult", "train.lr", "rfid", "latency_ms", "params_m", "rfid_curve"} <= set(table)
    assert all(len(curve) == it for curve, it in zip(table["rfid_curve"], table["training_iteration"]))
    # The trials were handed the extractor the driver resolved 'auto' to: every node scores on one scale.
    assert set(table["train.rfid_features"]) == {"classifier"}
    assert table["rfid_features"].str.startswith("classifier").all()
    assert json.loads((out / "search_options.json").read_text())["rfid_features"] == "classifier"  # for --resume
    # What each trial cost, and who proposed it.
    assert (table[["wall_seconds", "cpu_seconds", "images_seen"]] > 0).all().all()
    assert set(table["proposer"]) <= {"random", "graph", "neighbour"}
    # The console: one line per trial event with its key and proposer, the best so far, no config dumps.
    for key, proposer in zip(table["arch_key"], table["proposer"]):
        assert f"{key}  {proposer:<7s} started" in run.stdout
    assert "best so far:" in run.stdout
    assert "Current best trial" not in run.stdout and "params=" not in run.stdout and "Trial status" not in run.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_rfid"] == table["best_rfid"].iloc[0]
    assert summary["untrained_rfid"] > summary["best_rfid"]
    for name in ("search.png", "best_samples.png"):
        assert (out / name).stat().st_size > 10_000
    report = (out / "report.html").read_text()  # written at the end of every search
    assert "finished" in report and all(trial_id in report for trial_id in table["trial_id"])


def test_search_as_a_ray_job_survives_its_working_dir_being_deleted(tmp_path: Path) -> None:
    """`ray job submit --working-dir` starts the driver in a copy that Ray may delete mid-run (ray#52343)."""
    package = tmp_path / "package"  # what the user uploaded; Ray hands it to the workers
    package.mkdir()
    (package / "job.txt").write_text("ray-diffnas search")
    job_env = {**os.environ, JOB_CONFIG_ENV: json.dumps({"runtime_env": {"working_dir": str(package)}})}
    command = [
        sys.executable,
        "-m",
        "ray_diffnas",
        "search",
        "--dataset",
        "digits",
        "--num-samples",
        "2",
        "--max-iterations",
        "1",
        "--steps-per-iteration",
        "10",
        "--rfid-samples",
        "50",
        "--sampler-steps",
        "2",
        "--seed",
        "1",
    ]

    # A relative --output would be written into the copy Ray deletes: refused before anything runs.
    job_copy = tmp_path / "job_copy"
    job_copy.mkdir()
    refused = subprocess.run(
        [*command, "--output", "runs/search"], cwd=job_copy, env=job_env, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2
    assert "is relative" in refused.stderr and "absolute folder" in refused.stderr
    assert "Traceback" not in refused.stderr and not (job_copy / "runs").exists()

    # An absolute one: the search finishes although its starting folder is gone.
    out = tmp_path / "shared" / "run"
    driver = subprocess.Popen(
        [*command, "--output", str(out)],
        cwd=job_copy,
        env=job_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    shutil.rmtree(job_copy)
    stdout, stderr = driver.communicate(timeout=600)
    assert driver.returncode == 0, stderr[-3000:]
    assert "Best trial" in stdout
    assert len(pq.read_table(out / "results.parquet")) == 2
    assert json.loads((out / "summary.json").read_text())["trials"] == 2


def test_a_space_file_is_made_absolute_and_a_space_name_left_as_it_is(tmp_path: Path, monkeypatch) -> None:
    """Under a Ray job the command leaves its working dir: a relative --space file must be found first."""
    import argparse

    from ray_diffnas.app.cli import _resolve_paths_for_ray_job

    (tmp_path / "space.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    as_file = argparse.Namespace(space="space.json")
    _resolve_paths_for_ray_job(as_file)
    assert as_file.space == str(tmp_path / "space.json")
    as_name = argparse.Namespace(space="unet-bench:8")
    _resolve_paths_for_ray_job(as_name)
    assert as_name.space == "unet-bench:8"
