"""The search console (a Tune callback): what it prints for each trial event, driven by Tune's own Trial
objects; and the command's -v / -q flags."""

from __future__ import annotations

import io
import itertools
import os

from ray.tune.experiment import Trial

from ray_diffnas.app.cli import build_parser
from ray_diffnas.app.console import TUNE_OUTPUT_ENGINE_ENV, SearchConsole, tune_output
from ray_diffnas.app.options import CONSOLE, QUIET, TUNE_OUTPUT


def _trial(trial_id: str, proposer: str | None = "graph", base_channels: int = 16) -> Trial:
    config = {"arch": {"base_channels": base_channels, "channel_mult": [1, 2]}, "image_size": 8}
    if proposer:
        config["proposer"] = proposer
    return Trial("train_diffusion", config=config, trial_id=trial_id, stub=True)


def _console() -> tuple[SearchConsole, io.StringIO]:
    out = io.StringIO()
    return SearchConsole(max_iterations=4, stream=out, clock=itertools.count(0.0, 10.0).__next__), out


def test_every_trial_event_is_one_line_with_key_and_proposer() -> None:
    console, out = _console()
    first, second, third = _trial("a"), _trial("b", "neighbour", 24), _trial("c", None, 8)
    for trial in (first, second, third):
        console.on_trial_start(0, [], trial)
    console.on_trial_result(0, [], first, {"rfid": 5.0, "training_iteration": 1, "latency_ms": 1.5})
    console.on_trial_result(0, [], second, {"rfid": 7.0, "training_iteration": 1})
    console.on_trial_result(0, [], first, {"rfid": 6.0, "training_iteration": 2})
    second.update_last_result({"training_iteration": 1})
    console.on_trial_complete(0, [], second)
    first.update_last_result({"training_iteration": 4})
    console.on_trial_complete(0, [], first)
    third.update_last_result({"fault": "TrainingDivergedError: the training loss became nan by step 12"})
    console.on_trial_error(0, [], third)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10  # 3 starts, 3 results, 1 best, 1 stopped, 1 completed, 1 failed
    key_a = "c16_m1-2_r2-2_a8_h4_d0_mid1"
    assert lines[0].endswith(f"#1  {key_a}  graph   started")
    assert lines[2].endswith("#3  c8_m1-2_r2-2_a8_h4_d0_mid1  random  started")  # Tune's own searchers: random
    assert "iter 1/4  rfid 5.000  best 5.000  1.50 ms  - M  - s" in lines[3]
    assert lines[4].endswith(f"best so far: #1 {key_a}  RFID 5.000 (iteration 1)")
    assert "best 5.000" in lines[6]  # a worse later value keeps the trial's best, and prints no new best line
    assert lines[7].endswith("neighbour stopped by the scheduler after 1 iteration(s)")
    assert lines[8].endswith("graph   completed  best 5.000")
    assert lines[9].endswith("random  FAILED: TrainingDivergedError: the training loss became nan by step 12")
    assert lines[0].startswith("[00:00:10]") and lines[9].startswith("[00:01:40]")


def test_a_resumed_search_counts_time_from_its_own_start() -> None:
    console, out = _console()
    console.setup()
    console.on_trial_restore(0, [], _trial("a"))
    assert out.getvalue().startswith("[00:00:10] #1") and "restored from its checkpoint" in out.getvalue()


def test_tune_is_silent_below_verbose_and_the_environment_comes_back() -> None:
    assert TUNE_OUTPUT_ENGINE_ENV not in os.environ
    with tune_output(CONSOLE):
        assert os.environ[TUNE_OUTPUT_ENGINE_ENV] == "0"
    assert TUNE_OUTPUT_ENGINE_ENV not in os.environ
    with tune_output(TUNE_OUTPUT):
        assert TUNE_OUTPUT_ENGINE_ENV not in os.environ


def test_the_verbosity_flags() -> None:
    parser = build_parser()
    assert parser.parse_args(["search"]).verbosity == CONSOLE
    assert parser.parse_args(["search", "-v"]).verbosity == TUNE_OUTPUT
    assert parser.parse_args(["search", "--quiet"]).verbosity == QUIET
