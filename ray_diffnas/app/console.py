"""What a search prints while it runs: one line per trial event, and a line each time the best changes.

A Tune :class:`~ray.tune.Callback`: Tune's own output (its config and search-space dumps, its progress
table) is off at the default verbosity, and this prints, for each trial start, reported iteration and
end, the trial's architecture key, who proposed it, its iteration, last and best RFID, latency,
parameters and elapsed time. ``ray-diffnas search -v`` gives Tune's own output instead, ``-q`` neither.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from typing import Any, Callable, Iterator, TextIO

from ray.tune import Callback
from ray.tune.experiment import Trial

from ray_diffnas.app.options import TUNE_OUTPUT
from ray_diffnas.searchers.objective import Objective
from ray_diffnas.spaces.unet_arch import UNetArch
from ray_diffnas.trainable.reports import METRIC, MODE
from ray_diffnas.trainable.settings import PROPOSER_KEY


class SearchConsole(Callback):
    """Prints one line per trial event of a Tune run, and the best trial so far when it changes.

    Args:
        max_iterations: Iterations of a full trial (a trial that ends before it was stopped early).
        default_proposer: Shown for trials whose config names no proposer (Tune's own searchers).
        stream: Where lines go.
        clock: Seconds since some fixed time; each line shows the time since the console was made.

    Example:
        >>> import io
        >>> from ray.tune.experiment import Trial
        >>> out = io.StringIO()
        >>> now = iter([0.0, 5.0, 31.0, 31.0]).__next__  # seconds: at start, then at each line
        >>> console = SearchConsole(max_iterations=2, stream=out, clock=now)
        >>> trial = Trial("train_diffusion", config={"arch": {"base_channels": 16}, "image_size": 8,
        ...     "proposer": "graph"}, trial_id="t1", stub=True)
        >>> console.on_trial_start(0, [trial], trial)
        >>> console.on_trial_result(0, [trial], trial, {"rfid": 4.5, "training_iteration": 1,
        ...     "latency_ms": 2.0, "params_m": 0.4, "time_total_s": 31.0})
        >>> print(out.getvalue().rstrip())
        [00:00:05] #1  c16_m1-2-2_r2-2-2_a8_h4_d0_mid1  graph   started
        [00:00:31] #1  c16_m1-2-2_r2-2-2_a8_h4_d0_mid1  graph   iter 1/2  rfid 4.500  best 4.500  2.00 ms  0.40 M  31 s
        [00:00:31] best so far: #1 c16_m1-2-2_r2-2-2_a8_h4_d0_mid1  RFID 4.500 (iteration 1)
    """

    def __init__(
        self,
        max_iterations: int,
        default_proposer: str = "random",
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_iterations = max_iterations
        self.default_proposer = default_proposer
        self.stream = stream
        self.clock = clock
        self.start = clock()
        self.objective = Objective(METRIC, MODE)
        self.numbers: dict[str, int] = {}  # trial id -> its number in start order
        self.best: dict[str, float] = {}  # trial id -> its best RFID so far
        self.best_overall: float | None = None

    # --- Tune's calls ---------------------------------------------------------------------------

    def setup(
        self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None, **info: Any
    ) -> None:
        """At the start of every run of the experiment (a resumed one too: this object comes back from
        Tune's saved state, made in another process): times count from now."""
        self.start = self.clock()

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._say(trial, "started")

    def on_trial_restore(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._say(trial, "restored from its checkpoint")

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any) -> None:
        value = self.objective.value(result)
        if value is None:
            return  # a fault report: on_trial_error says why the trial failed
        best = self.best.get(trial.trial_id)
        if self.objective.better(value, best):
            self.best[trial.trial_id] = best = value
        done = int(result.get("training_iteration") or 0)
        self._say(
            trial,
            f"iter {done}/{self.max_iterations}  rfid {value:.3f}  best {best:.3f}  "
            f"{_number(result.get('latency_ms'), '.2f')} ms  {_number(result.get('params_m'), '.2f')} M  "
            f"{_number(result.get('time_total_s'), '.0f')} s",
        )
        if self.objective.better(value, self.best_overall):
            self.best_overall = value
            self._print(f"best so far: #{self._number(trial)} {self._key(trial)}  RFID {value:.3f} (iteration {done})")

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        done = int((trial.last_result or {}).get("training_iteration") or 0)
        if done >= self.max_iterations:
            self._say(trial, f"completed  best {_number(self.best.get(trial.trial_id), '.3f')}")
        else:
            self._say(trial, f"stopped by the scheduler after {done} iteration(s)")

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        reason = (trial.last_result or {}).get("fault") or "see the trial's error.txt"
        self._say(trial, f"FAILED: {str(reason).strip().splitlines()[-1][:200]}")

    # --- lines --------------------------------------------------------------------------------

    def _say(self, trial: Trial, what: str) -> None:
        proposer = (trial.config or {}).get(PROPOSER_KEY) or self.default_proposer
        self._print(f"#{self._number(trial):<3d}{self._key(trial)}  {proposer:<7s} {what}")

    def _print(self, text: str) -> None:
        elapsed = time.strftime("%H:%M:%S", time.gmtime(max(0.0, self.clock() - self.start)))
        print(f"[{elapsed}] {text}", file=self.stream or sys.stdout, flush=True)

    def _number(self, trial: Trial) -> int:
        return self.numbers.setdefault(trial.trial_id, len(self.numbers) + 1)

    @staticmethod
    def _key(trial: Trial) -> str:
        config = trial.config or {}
        try:
            return UNetArch.from_dict(config.get("arch") or {}, config.get("image_size") or 32).key()
        except (TypeError, ValueError):
            return trial.trial_id


# Ray's switch between Tune's output engines; its newer one prints an experiment box and file paths even
# at verbose=0, the older one nothing.
TUNE_OUTPUT_ENGINE_ENV = "RAY_AIR_NEW_OUTPUT"


@contextlib.contextmanager
def tune_output(verbosity: int) -> Iterator[None]:
    """Runs the block (``Tuner.fit``) with Tune silent below ``TUNE_OUTPUT`` verbosity, then puts the
    environment back as it was."""
    if verbosity >= TUNE_OUTPUT or TUNE_OUTPUT_ENGINE_ENV in os.environ:  # -v, or the user chose an engine
        yield
        return
    os.environ[TUNE_OUTPUT_ENGINE_ENV] = "0"
    try:
        yield
    finally:
        os.environ.pop(TUNE_OUTPUT_ENGINE_ENV, None)


class _UnstartedTrialsFilter(logging.Filter):
    """Drops Tune's "Failed to fetch metrics" warning: a trial that never started has no results file, and
    Tune lists each one with a traceback when it reads the experiment (a stopped search or build has many)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to fetch metrics")


@contextlib.contextmanager
def quiet_unstarted_trials() -> Iterator[None]:
    """Runs the block (``Tuner.fit``, ``ExperimentAnalysis``) without that warning: the project's tables and
    reports show such trials as ``unfinished`` rows instead."""
    tune_logger = logging.getLogger("ray.tune.analysis.experiment_analysis")
    quiet = _UnstartedTrialsFilter()
    tune_logger.addFilter(quiet)
    try:
        yield
    finally:
        tune_logger.removeFilter(quiet)


def _number(value: Any, spec: str) -> str:
    return format(float(value), spec) if isinstance(value, (int, float)) and math.isfinite(value) else "-"
