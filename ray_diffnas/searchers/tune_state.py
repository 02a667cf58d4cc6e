"""The trials of a Tune run as its saved experiment state lists them, read the way Tune resumes them.

A restored searcher must agree with the trials Tune restores. Tune saves its experiment state and
the searcher's state together, but copies them to storage one file at a time, so a driver killed
mid-copy can leave one of them a save behind the other: a trial Tune knows and the memory does not,
a trial that finished for Tune and still runs in the memory, or a proposal Tune never recorded.
:meth:`MemorySearcher.restore_from_dir` reads what Tune will resume from here and follows it.

Tune has no public reader of a run's trials that keeps their storage paths (``ExperimentAnalysis``
points them at the folder it is given), so this reads the state file as ``TuneController.resume``
and ``ExperimentAnalysis`` do, with their helpers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.tune.execution.experiment_state import _find_newest_experiment_checkpoint
from ray.tune.experiment import Trial
from ray.tune.utils.serialization import _loads_with_cloudpickle

RESULT_FILE = "result.json"  # Tune's per-trial log of every reported result, one JSON object a line


@dataclass(frozen=True)
class SavedTrial:
    """One trial of a saved Tune run."""

    trial_id: str
    status: str  # Tune's: PENDING, RUNNING, PAUSED, TERMINATED or ERROR
    config: dict[str, Any]
    results: list[dict[str, Any]]  # every result it reported, oldest first (its last one if its log is unreadable)

    @property
    def finished(self) -> bool:
        return self.status in (Trial.TERMINATED, Trial.ERROR)

    @property
    def errored(self) -> bool:
        return self.status == Trial.ERROR


def has_saved_state(folder: str | os.PathLike) -> bool:
    """Whether Tune saved a state of its run in ``folder`` (``experiment_state-*.json``) to resume it from.

    ``Tuner.can_restore`` looks for ``tuner.pkl`` alone, which Tune writes before the run starts;
    without a saved state a restored Tuner starts the run afresh, with a searcher that never saw its
    ``param_space``.
    """
    return _find_newest_experiment_checkpoint(str(folder)) is not None


def saved_trials(folder: str | os.PathLike) -> list[SavedTrial] | None:
    """The trials of the newest experiment state in ``folder``; None when it holds none."""
    newest = _find_newest_experiment_checkpoint(str(folder))
    if newest is None:
        return None
    state = _loads_with_cloudpickle(Path(newest).read_bytes())
    trials = []
    for trial_state, run_metadata in state["trial_data"]:
        trial = Trial.from_json_state(trial_state, stub=True)
        trial.restore_run_metadata(run_metadata)
        results = _logged_results(trial.path)
        last = trial.run_metadata.last_result
        if last and (not results or iteration(last) > iteration(results[-1])):  # its log is older than the state
            results.append(dict(last))
        trials.append(SavedTrial(trial.trial_id, trial.status, dict(trial.config), results))
    return trials


def iteration(result: dict[str, Any]) -> int:
    """The ``training_iteration`` of a reported result (0 when it has none)."""
    return int(result.get("training_iteration") or 0)


def _logged_results(trial_path: str | None) -> list[dict[str, Any]]:
    """The trial's result log in its storage folder (a local one; [] elsewhere or when absent)."""
    if not trial_path or not Path(trial_path, RESULT_FILE).is_file():
        return []
    results = []
    for line in Path(trial_path, RESULT_FILE).read_text().splitlines():
        try:
            results.append(json.loads(line))
        except ValueError:
            break  # a line cut off by a kill: what follows it is not trusted
    return results
