"""``ray-diffnas build-table``: every architecture of a space trained once into one Parquet table, and a
build killed with SIGKILL (the driver and the Ray it started) resumed by running the command again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ray_diffnas.bench.build import TABLE_FILE, TUNE_FOLDER, resolve_space
from ray_diffnas.bench.harness import TableBenchmark
from ray_diffnas.bench.table import read_table_metadata, write_table_file
from ray_diffnas.errors import DiffNASError
from ray_diffnas.spaces.unet_space import UNetSpace

pytestmark = pytest.mark.slow  # trains architectures, kills and restarts a Ray: minutes

SPACE = UNetSpace(
    8,
    base_channels=(8,),
    channel_mults=(1, 2),
    num_levels=(2,),
    num_res_blocks=(1,),
    attention_max_resolution=0,
    num_heads=(1,),
    dropout=(0.0,),
    mid_attention=(False, True),
)
ITERATIONS = 2


def _command(space_file: Path, output: Path) -> list[str]:
    return [
        sys.executable, "-m", "ray_diffnas", "build-table",
        "--space", str(space_file), "--output", str(output),
        "--max-iterations", str(ITERATIONS), "--steps-per-iteration", "10", "--rfid-samples", "32",
        "--sampler-steps", "2", "--batch-size", "16",
        "--cpus-per-trial", "2",  # one trial at a time on CI's two cores: the kill finds trials done one by one
    ]  # fmt: skip


def _finished_trials(tune_folder: Path) -> dict[str, str]:
    """Trial folder -> its result.json, for every trial that reported its last iteration."""
    done = {}
    for path in tune_folder.glob("*/result.json"):
        text = path.read_text()
        lines = [json.loads(line) for line in text.splitlines() if line.strip().endswith("}")]
        if lines and lines[-1].get("training_iteration") == ITERATIONS:
            done[path.parent.name] = text
    return done


def test_a_killed_build_resumes_without_losing_or_retraining_an_architecture(tmp_path: Path) -> None:
    space_file = tmp_path / "space.json"
    space_file.write_text(json.dumps(SPACE.to_dict()))
    output = tmp_path / "build"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    driver = subprocess.Popen(
        _command(space_file, output), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 400
        while len(_finished_trials(output / TUNE_FOLDER)) < 2 and time.monotonic() < deadline:
            assert driver.poll() is None, "the build ended before it could be killed"
            time.sleep(0.5)
        assert len(_finished_trials(output / TUNE_FOLDER)) >= 2, "no two architectures finished in time"
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started
        driver.wait()
    before = _finished_trials(output / TUNE_FOLDER)
    assert not (output / TABLE_FILE).exists()

    run = subprocess.run(_command(space_file, output), env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]

    after = _finished_trials(output / TUNE_FOLDER)
    for trial, text in before.items():  # finished before the kill: not one iteration trained again
        assert after[trial] == text, trial
    table = pd.read_parquet(output / TABLE_FILE)
    expected = sorted(arch.key() for arch in SPACE.enumerate())
    assert table["arch_key"].tolist() == expected  # every architecture once, none lost
    assert table["rfid_final"].notna().all() and (table["status"] == "completed").all()
    assert (table["rfid_final"] == table[f"rfid@{ITERATIONS}"]).all()
    assert (table["rfid_best"] <= table["rfid_final"]).all()
    assert (table[["latency_ms", "params_m", "gflops", "train_seconds"]] > 0).all().all()
    metadata = read_table_metadata(output / TABLE_FILE)
    assert metadata["dataset"] == "digits" and metadata["image_size"] == 8 and metadata["architectures"] == 4
    assert metadata["training"]["max_iterations"] == ITERATIONS and metadata["rfid_features"]
    assert len(json.loads((output / "build_time.json").read_text())["runs"]) == 1  # the killed run never finished

    # The table as bench-table reads it: space, architecture column and objective from its metadata.
    bench = TableBenchmark.from_file(output / TABLE_FILE)
    assert (bench.objective, bench.mode, len(bench.table)) == ("rfid_final", "min", 4)
    assert bench.table.space == SPACE

    # Another build into the same folder is refused, with the fix.
    rerun = subprocess.run(
        [*_command(space_file, output), "--seed", "1"], env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 2 and "holds a build with other options" in rerun.stderr and "seed" in rerun.stderr

    # --rfid-features auto was resolved once, by the first run, and every rerun scores with that choice: a
    # rerun on a machine that would resolve it otherwise is refused, not mixed into the table.
    options_file = output / "build_options.json"
    saved = json.loads(options_file.read_text())
    assert (saved["rfid_features"], saved["rfid_features_resolved"]) == ("auto", "classifier")
    options_file.write_text(json.dumps({**saved, "rfid_features_resolved": "inception"}))  # as if resolved there
    rerun = subprocess.run(_command(space_file, output), env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 2 and "Inception weights" in rerun.stderr, rerun.stderr[-2000:]


def test_the_space_must_be_a_unet_space_of_the_trial_size() -> None:
    assert resolve_space("unet-bench", 16).image_size == 16
    with pytest.raises(DiffNASError, match="--image-size 16"):
        resolve_space("unet-bench:16", 8)
    with pytest.raises(DiffNASError, match="not a UNet space"):
        resolve_space("nb201", 8)


def test_a_build_stopped_with_ctrl_c_writes_its_table_and_another_build_reuses_its_rows(tmp_path: Path) -> None:
    """The carry-over between machines and sessions: Ctrl-C still writes the table (unfinished rows
    marked); a build in a new folder with --reuse-table trains only what that table lacks."""
    space_file = tmp_path / "space.json"
    space_file.write_text(json.dumps(SPACE.to_dict()))
    first, second = tmp_path / "first", tmp_path / "second"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    driver = subprocess.Popen(
        _command(space_file, first), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 400
    while len(_finished_trials(first / TUNE_FOLDER)) < 2 and time.monotonic() < deadline:
        assert driver.poll() is None, "the build ended before it could be stopped"
        time.sleep(0.5)
    driver.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 1, stderr[-3000:]  # not complete: the command says so in its exit code
    assert "Failed to fetch metrics" not in stderr  # Tune's warning per unstarted trial is quieted

    stopped = pd.read_parquet(first / TABLE_FILE)
    expected = sorted(arch.key() for arch in SPACE.enumerate())
    assert stopped["arch_key"].tolist() == expected  # every architecture has its row, finished or not
    finished = stopped[stopped["status"] == "completed"]
    assert 2 <= len(finished) < 4 and finished["rfid_final"].notna().all()
    assert stopped.loc[stopped["status"] != "completed", "rfid_final"].isna().all()
    assert read_table_metadata(first / TABLE_FILE)["rows_complete"] == len(finished)

    run = subprocess.run(
        [*_command(space_file, second), "--reuse-table", str(first / TABLE_FILE)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    table = pd.read_parquet(second / TABLE_FILE)
    assert table["arch_key"].tolist() == expected and (table["status"] == "completed").all()
    trained_here = len(list((second / TUNE_FOLDER).glob("*/result.json")))
    assert trained_here == 4 - len(finished)  # the reused architectures did not train again
    kept = table.set_index("arch_key").loc[finished["arch_key"]]
    assert kept["rfid_final"].tolist() == finished["rfid_final"].tolist()
    metadata = read_table_metadata(second / TABLE_FILE)
    assert metadata["reused"] == {"table": str(first / TABLE_FILE), "rows": len(finished)}
    assert metadata["rows_complete"] == 4

    # The stopped build's Tune folder deleted (or its table copied to another machine): the same command
    # keeps the table's finished rows and trains the rest, never the finished ones over again.
    shutil.rmtree(first / TUNE_FOLDER)
    rerun = subprocess.run(_command(space_file, first), env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    table = pd.read_parquet(first / TABLE_FILE)
    assert (table["status"] == "completed").all()
    assert len(list((first / TUNE_FOLDER).glob("*/result.json"))) == 4 - len(finished)
    assert (
        table.set_index("arch_key").loc[finished["arch_key"], "rfid_final"].tolist() == finished["rfid_final"].tolist()
    )

    # The reused table loses a row after the second build started (rebuilt, or edited): rerunning the second
    # build keeps the row its own table holds; with that table gone too, the warning says how to train it.
    built = pd.read_parquet(second / TABLE_FILE)[["arch_key", "status", "rfid_final"]]
    lost = finished["arch_key"].iloc[0]
    table.loc[table["arch_key"] == lost, ["status", "rfid_final"]] = ["unfinished", float("nan")]
    write_table_file(table, first / TABLE_FILE, read_table_metadata(first / TABLE_FILE))
    again = [*_command(space_file, second), "--reuse-table", str(first / TABLE_FILE)]
    rerun = subprocess.run(again, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    kept_rows = pd.read_parquet(second / TABLE_FILE)[["arch_key", "status", "rfid_final"]]
    assert kept_rows.equals(built)  # nothing it had finished is lost
    (second / TABLE_FILE).unlink()
    rerun = subprocess.run(again, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 1, rerun.stderr[-3000:]  # not complete, and a rerun cannot complete it
    assert "the resumed run's grid has no trial for 1 of them" in rerun.stderr
    assert f"--output NEW_FOLDER --reuse-table {(second / TABLE_FILE).resolve()}" in rerun.stderr
    shown = pd.read_parquet(second / TABLE_FILE).set_index("arch_key")["status"]
    assert shown[lost] == "unfinished" and (shown.drop(lost) == "completed").all()


def test_reuse_refuses_a_table_of_another_build(tmp_path: Path) -> None:
    from ray_diffnas.bench.reuse import reused_rows

    archs = [arch.to_dict() for arch in SPACE.enumerate()]
    metadata = {"format": 1, "space": SPACE.to_dict(), "dataset": "digits", "image_size": 8, "seed": 0}
    metadata["rfid_features"] = "classifier:digits-8px-0123456789ab"
    metadata["training"] = {"max_iterations": 2, "lr": 0.002}
    frame = pd.DataFrame({"arch": [json.dumps(archs[0], sort_keys=True)], "status": ["completed"], "rfid_final": [3.0]})
    path = write_table_file(frame, tmp_path / "table.parquet", metadata)
    assert len(reused_rows(str(path), metadata, archs).frame) == 1
    assert len(reused_rows(str(path), metadata, archs[1:]).frame) == 0  # not an architecture of this build
    with pytest.raises(DiffNASError, match=r"built differently \(seed: 0 there, 1 here\)"):
        reused_rows(str(path), {**metadata, "seed": 1}, archs)
    # a resumed build's own table, of the same options but other results (a default changed since): said so
    with pytest.raises(DiffNASError, match=r"the table of the build this run resumes, was built differently"):
        reused_rows(str(path), {**metadata, "training": {"max_iterations": 2, "lr": 0.001}}, archs, own=True)
    with pytest.raises(DiffNASError, match=r"built differently \(rfid_features: 'classifier:digits"):
        reused_rows(str(path), {**metadata, "rfid_features": "inception_v3_clean"}, archs)  # RFIDs on another scale
    (tmp_path / "plain.csv").write_text("arch,rfid_final\n{},1\n")
    with pytest.raises(DiffNASError, match="not a table written by 'ray-diffnas build-table'"):
        reused_rows(str(tmp_path / "plain.csv"), metadata, archs)
