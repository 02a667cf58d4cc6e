"""A GPT4Searcher search killed mid-run (SIGKILL of the driver) finishes with Tuner.restore."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from llm_server import FakeLLMServer
from ray import tune

from ray_diffnas import SearchMemory, UNetSpace, train_diffusion
from ray_diffnas.searcher_base import MEMORY_FILE

SPACE = UNetSpace(image_size=8, base_channels=(8, 16), channel_mults=(1, 2), num_res_blocks=(1,))
DRIVER = textwrap.dedent("""
    import os, sys
    from ray import tune
    from ray_diffnas import GPT4Searcher, UNetSpace, train_diffusion
    space = UNetSpace(image_size=8, base_channels=(8, 16), channel_mults=(1, 2), num_res_blocks=(1,))
    tuner = tune.Tuner(
        train_diffusion,
        param_space=space.param_space(dataset="digits", max_iterations=2, steps_per_iteration=10,
                                      rfid_samples=64, sampler_steps=2, batch_size=16),
        tune_config=tune.TuneConfig(metric="rfid", mode="min", num_samples=4, max_concurrent_trials=1,
                                    search_alg=GPT4Searcher(base_url=sys.argv[2], proposals_per_call=2)),
        run_config=tune.RunConfig(storage_path=sys.argv[1], name="killed"),
    )
    tuner.fit()
""")


def _completed(memory_file: Path) -> int:
    try:
        memory, _ = SearchMemory.load(memory_file)
    except Exception:  # not written yet, or being replaced
        return 0
    return len(memory.records(["completed", "stopped"]))


def test_killed_driver_resumes_with_tuner_restore(tmp_path: Path, ray_session) -> None:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    memory_file = tmp_path / "killed" / MEMORY_FILE
    with FakeLLMServer(SPACE) as server:
        env = {**os.environ, "OPENAI_API_KEY": "sk-test", "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
        driver = subprocess.Popen([sys.executable, str(script), str(tmp_path), server.url], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        while _completed(memory_file) < 2 and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.5)
        assert driver.poll() is None, "the driver finished before it could be killed"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        before, _ = SearchMemory.load(memory_file)
        finished_before = {r.trial_id: r for r in before.records(["completed", "stopped"])}
        assert len(finished_before) >= 2

        tuner = tune.Tuner.restore(str(tmp_path / "killed"), trainable=train_diffusion, resume_errored=True)
        grid = tuner.fit()

    assert len(grid) == 4 and not grid.errors
    keys = [SPACE.key(r.config["arch"]) for r in grid]
    assert len(set(keys)) == 4  # no architecture evaluated twice
    after, state = SearchMemory.load(memory_file)
    for trial_id, record in finished_before.items():
        assert after.get(trial_id).curve == record.curve and after.get(trial_id).arch_key == record.arch_key
    assert len(after.records(["completed", "stopped"])) == 4
