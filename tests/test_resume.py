"""A search killed mid-run (a real SIGKILL of the driver and the Ray it started) finishes, for both
searchers: from a script with ``Tuner.restore`` (with and without a ``ConcurrencyLimiter``), and from
the command line with ``ray-diffnas search --resume``.

Each must reach ``num_samples`` exactly, evaluate no architecture twice, and keep the search
memory: every trial that had finished before the kill is there unchanged, plus the new ones.

The killed driver runs its own Ray, as a user's would, and the resume runs in another Ray session:
that is the moment Tune brings back only the ``*.json`` and ``*.pkl`` files of the experiment folder
(issue 15: the memory file was left behind and the resumed searcher had no space). The kill waits on
a file the search writes (two finished trials in the memory file), not on a timer.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from llm_server import FakeLLMServer
from ray import tune

from ray_diffnas import SearchMemory, UNetSpace, train_diffusion
from ray_diffnas.app.options import SearchOptions, load_options, save_options
from ray_diffnas.app.run import TUNE_FOLDER
from ray_diffnas.searchers.base import MEMORY_FILE

pytestmark = pytest.mark.slow  # whole searches, Ray clusters or killed drivers: minutes

# The API key the drivers get: it must show up in no file the search writes, nor in any log.
SENTINEL_KEY = "sk-SENTINEL-resume-run-0123456789"
SPACE = UNetSpace(image_size=8, base_channels=(8, 16), channel_mults=(1, 2), num_res_blocks=(1,))
SEARCHERS = {
    "gpt4": "GPT4Searcher(proposals_per_call=2)",  # endpoint from $OPENAI_BASE_URL
    "graph": "GraphDiffusionSearcher(warmup=2, retrain_every=1, train_steps=40, retrain_steps=10, prior_graphs=64)",
}
# How the searcher reaches Tune: wrapped in a ConcurrencyLimiter by hand, or bare (one trial at a time
# through the CPUs a trial asks for, so the kill still finds trials finished one by one).
LIMITERS = {"limiter": "ConcurrencyLimiter({}, max_concurrent=1)", "bare": "{}"}
DRIVER = textwrap.dedent("""
    import sys
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray_diffnas import GPT4Searcher, GraphDiffusionSearcher, UNetSpace, train_diffusion
    space = UNetSpace(image_size=8, base_channels=(8, 16), channel_mults=(1, 2), num_res_blocks=(1,))
    tuner = tune.Tuner(
        tune.with_resources(train_diffusion, {"cpu": 2}),
        param_space=space.param_space(dataset="digits", max_iterations=2, steps_per_iteration=10,
                                      rfid_samples=64, sampler_steps=2, batch_size=16,
                                      lr=tune.loguniform(1e-3, 3e-3)),  # a searched setting, sampled
        tune_config=tune.TuneConfig(metric="rfid", mode="min", num_samples=4, search_alg=eval(sys.argv[2])),
        run_config=tune.RunConfig(storage_path=sys.argv[1], name="killed"),
    )
    tuner.fit()
""")
CLI_FLAGS = [
    "--dataset",
    "digits",
    "--num-samples",
    "4",
    "--max-iterations",
    "2",
    "--steps-per-iteration",
    "10",
    "--rfid-samples",
    "64",
    "--sampler-steps",
    "2",
    "--batch-size",
    "16",
    "--cpus-per-trial",
    "2",
]


def _finished(memory_file: Path) -> int:
    try:
        memory, _ = SearchMemory.load(memory_file)
    except Exception:  # not written yet, or being replaced
        return 0
    return len(memory.records(["completed", "stopped"]))


def _kill_after_two_trials(command: list[str], memory_file: Path, env: dict[str, str]) -> dict:
    """Starts the driver (with a Ray of its own), SIGKILLs it and its Ray once two trials have
    finished; returns those trials' records."""
    driver = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 600  # generous: a loaded 2-core machine, not the test, sets the pace
        while _finished(memory_file) < 2 and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.5)
        assert driver.poll() is None, "the driver finished (or failed) before it could be killed"
        assert _finished(memory_file) >= 2, "no two trials finished in time"
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started: nothing of them goes on
        driver.wait()
    before, _ = SearchMemory.load(memory_file)
    return {r.trial_id: r for r in before.records(["completed", "stopped"])}


def _check_memory_kept(memory_file: Path, finished_before: dict, total: int) -> None:
    after, _ = SearchMemory.load(memory_file)
    for trial_id, record in finished_before.items():
        kept = after.get(trial_id)
        assert (kept.arch_key, kept.curve, kept.status, kept.config) == (
            record.arch_key,
            record.curve,
            record.status,
            record.config,
        )
    assert len(after.records()) == total and len(after.records(["completed", "stopped"])) == total
    assert len(after.keys()) == total  # no architecture twice


@pytest.fixture()
def llm_env():
    """The environment of a driver process: a fake LLM over HTTP, and no Ray to join (it starts its own)."""
    with FakeLLMServer(SPACE) as server:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        yield {**env, "OPENAI_API_KEY": SENTINEL_KEY, "OPENAI_BASE_URL": server.url}


# Each searcher and each way of reaching Tune once (not their product: each run costs about a minute).
@pytest.mark.parametrize("searcher,limiter", [("gpt4", "limiter"), ("graph", "bare")])
def test_killed_script_resumes_with_tuner_restore(
    searcher: str, limiter: str, tmp_path: Path, llm_env: dict, ray_session
) -> None:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    memory_file = tmp_path / "killed" / MEMORY_FILE
    search_alg = LIMITERS[limiter].format(SEARCHERS[searcher])
    finished_before = _kill_after_two_trials(
        [sys.executable, str(script), str(tmp_path), search_alg], memory_file, llm_env
    )
    os.environ["OPENAI_BASE_URL"] = llm_env["OPENAI_BASE_URL"]  # the restored GPT4Searcher reads it
    try:
        grid = tune.Tuner.restore(str(tmp_path / "killed"), trainable=train_diffusion).fit()
    finally:
        os.environ.pop("OPENAI_BASE_URL")

    assert len(grid) == 4 and not grid.errors
    assert len({SPACE.key(r.config["arch"]) for r in grid}) == 4  # no architecture evaluated twice
    # Restored without param_space, the searcher still samples the searched setting (not the Domain itself)
    assert all(isinstance(r.config["lr"], float) and 1e-3 <= r.config["lr"] <= 3e-3 for r in grid)
    _check_memory_kept(memory_file, finished_before, total=4)


# The graph searcher's command is killed and resumed many times over in test_kill_anywhere.py; here the
# LLM searcher's, whose API key must also stay out of every file and log.
@pytest.mark.parametrize("searcher", ["gpt4", "hybrid"])
def test_killed_command_resumes_with_resume_flag(searcher: str, tmp_path: Path, llm_env: dict) -> None:
    output = tmp_path / "search"
    memory_file = output / TUNE_FOLDER / MEMORY_FILE
    command = [sys.executable, "-m", "ray_diffnas", "search", "--searcher", searcher, "--output", str(output)]
    if searcher == "hybrid":  # a 4-trial search: only an LLM warm-up asks the LLM (whose key must stay out of files)
        command += ["--hybrid-warmup", "llm"]
    sessions_before = _ray_sessions()
    finished_before = _kill_after_two_trials(command + CLI_FLAGS, memory_file, llm_env)

    resumed = subprocess.run(
        [sys.executable, "-m", "ray_diffnas", "search", "--resume", str(output)],
        env=llm_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    results = pd.read_parquet(output / "results.parquet")
    assert len(results) == 4 and results["arch_key"].is_unique
    assert set(results["status"]) <= {"completed", "stopped"}
    _check_memory_kept(memory_file, finished_before, total=4)
    assert SENTINEL_KEY not in resumed.stdout + resumed.stderr
    page = (output / "report.html").read_text()
    assert "tokens" in page  # the LLM's calls (and for the hybrid, its screen) in the report
    assert ("LLM candidates screened by the graph model" in page) == (searcher == "hybrid")
    # The Rays the killed and the resumed driver started (and any a test running alongside started).
    logs = _ray_sessions() - sessions_before
    assert len(logs) >= 2
    assert _files_containing(tmp_path, SENTINEL_KEY) == []
    assert [p for log in logs for p in _files_containing(log, SENTINEL_KEY)] == []


def _ray_sessions() -> set[Path]:
    root = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir(), "ray")  # RAY_TMPDIR: see ../conftest.py
    return {p for p in root.glob("session_2*") if p.is_dir()}


def _files_containing(folder: Path, needle: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_resume_of_a_folder_without_a_search_is_one_clear_error(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "ray_diffnas", "search", "--resume", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "holds no search to resume" in run.stderr and "--output folder of a search" in run.stderr


# A started search (its Tune folder, or its options before Tune's first save) and a finished one whose
# bulky tune/ folder was deleted (its results and summary are still what the user keeps).
@pytest.mark.parametrize("held", [TUNE_FOLDER, "search_options.json", "results.parquet", "summary.json"])
def test_a_new_search_into_a_folder_with_a_search_is_refused(held: str, tmp_path: Path) -> None:
    if held == TUNE_FOLDER:
        (tmp_path / held).mkdir()
    else:
        (tmp_path / held).write_text("kept")
    run = subprocess.run(
        [sys.executable, "-m", "ray_diffnas", "search", "--dataset", "digits", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    if held in ("results.parquet", "summary.json"):  # a finished search, its tune/ deleted: nothing to resume
        assert f"holds a finished search ({held}; 'ray-diffnas report" in run.stderr
        save_options(SearchOptions(dataset="digits", output=tmp_path), tmp_path)
        resumed = subprocess.run(
            [sys.executable, "-m", "ray_diffnas", "search", "--resume", str(tmp_path)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert resumed.returncode == 2 and "holds a finished search" in resumed.stderr  # not started over
    else:
        assert "already holds a search; finish it with 'ray-diffnas search --resume" in run.stderr
    assert held == TUNE_FOLDER or (tmp_path / held).read_text() == "kept"


def test_ctrl_c_stops_a_search_that_resume_then_finishes(tmp_path: Path) -> None:
    """Tune ends ``fit`` quietly on Ctrl-C: the command must not then write the results and summary of a
    finished search with the cut-short trial as "stopped" (by ASHA) and exit 0, but say it stopped."""
    output = tmp_path / "search"
    memory_file = output / TUNE_FOLDER / MEMORY_FILE
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, "-m", "ray_diffnas", "search", "--searcher", "graph", "--output", str(output)]
    driver = subprocess.Popen(
        command + CLI_FLAGS, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 600
        while _finished(memory_file) < 1 and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.5)
        assert driver.poll() is None and _finished(memory_file) >= 1, "no trial finished in time"
        driver.send_signal(signal.SIGINT)  # what Ctrl-C sends (to the driver: Ray's own processes ignore it)
        _, stderr = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:  # a failed wait: nothing of it goes on
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()

    assert driver.returncode == 130, stderr[-3000:]
    assert f"Finish it with 'ray-diffnas search --resume {output}'" in stderr
    assert not (output / "results.parquet").exists() and not (output / "summary.json").exists()
    assert (output / "report.html").is_file()  # the search so far

    resumed = subprocess.run(
        [sys.executable, "-m", "ray_diffnas", "search", "--resume", str(output)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    results = pd.read_parquet(output / "results.parquet")
    assert len(results) == 4 and results["arch_key"].is_unique
    assert set(results["status"]) <= {"completed", "stopped"}
    _check_memory_kept(memory_file, {}, total=4)


def test_resume_of_a_search_killed_before_its_first_save_starts_it_again(tmp_path: Path) -> None:
    """Nothing to restore (Tune had made its folder but saved nothing): the search starts over, with
    the options it was started with, and the options file stays as it was."""
    options = SearchOptions(
        dataset="digits",
        searcher="random",
        num_samples=1,
        max_iterations=1,
        steps_per_iteration=5,
        rfid_samples=32,
        sampler_steps=2,
        batch_size=16,
        cpus_per_trial=2,
        output=tmp_path,
    )
    options_file = save_options(options, tmp_path)
    saved = options_file.read_bytes()
    (tmp_path / TUNE_FOLDER).mkdir()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    run = subprocess.run(
        [sys.executable, "-m", "ray_diffnas", "search", "--resume", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "starting it again from the beginning with its saved options" in run.stderr
    assert len(pd.read_parquet(tmp_path / "results.parquet")) == 1
    assert options_file.read_bytes() == saved


def test_resume_keeps_the_options_a_search_started_with(tmp_path: Path) -> None:
    """Options saved by a search (torch_compile and constraints included) come back as they were."""
    started = SearchOptions(
        dataset="digits", num_samples=5, torch_compile=True, constraints=("latency_ms<=5",), output=tmp_path
    )
    save_options(started, tmp_path)
    (tmp_path / TUNE_FOLDER).mkdir()
    resumed = load_options(tmp_path)
    assert resumed == dataclasses.replace(started, output=tmp_path.resolve())
    assert resumed.training_settings()["torch_compile"] is True
