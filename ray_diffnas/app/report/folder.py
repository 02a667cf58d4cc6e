"""A search's folder read back: its trials, its searcher's memory, its options and summary.

Works on a finished search, one still running, and one whose driver was killed: the trials come from
Tune's experiment folder (``tune/``) when it is there (the freshest view: running trials included),
else from ``results.parquet``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ray_diffnas.app.options import OPTIONS_FILE, SUMMARY_FILE, TUNE_FOLDER, SearchOptions, load_options
from ray_diffnas.app.results import RESULTS_FILE, UNFINISHED, ranked, results_frame
from ray_diffnas.errors import DiffNASError
from ray_diffnas.searchers.base import MEMORY_FILE
from ray_diffnas.searchers.memory import MemoryFileError, SearchMemory

logger = logging.getLogger(__name__)


@dataclass
class SearchFolder:
    """What a search folder holds, as the report needs it.

    Example:
        >>> folder = SearchFolder(Path("runs/search"), pd.DataFrame({"trial_id": ["a"]}))
        >>> folder.state, folder.options.searcher
        ('running or stopped', 'graph')
    """

    path: Path
    trials: pd.DataFrame  # one row per trial (ray_diffnas.app.results.results_frame)
    memory: SearchMemory | None = None  # the project searchers' memory (None for Tune's random search)
    searcher_state: dict[str, Any] = field(default_factory=dict)  # e.g. the LLM searcher's calls and usage
    options: SearchOptions = field(default_factory=SearchOptions)
    summary: dict[str, Any] | None = None  # summary.json of a finished search

    @property
    def state(self) -> str:
        return "finished" if self.summary is not None else "running or stopped"


def read_search_folder(path: str | Path, trials: pd.DataFrame | None = None) -> SearchFolder:
    """Reads the ``--output`` folder of a ``ray-diffnas search``.

    ``trials``: the search's trials frame where the caller has it (the search itself, at its end), so that
    Tune's experiment is not read again.

    Raises:
        DiffNASError: when ``path`` is not a search folder, naming what is missing.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise DiffNASError(f"{str(path)!r} is not a folder; pass the --output folder of a ray-diffnas search.")
    summary = _json(path / SUMMARY_FILE)
    tune_folder = path / TUNE_FOLDER
    trials = _read_trials(path, finished=summary is not None) if trials is None else trials
    memory, state = _memory(tune_folder / MEMORY_FILE)
    options = _options(path / OPTIONS_FILE)
    trials = _with_memory(trials.reset_index(drop=True), memory)
    trials = ranked(trials, options.target())  # Tune's trials of a running search come without the ranks
    return SearchFolder(path, trials, memory, state, options, summary)


def _read_trials(path: Path, finished: bool) -> pd.DataFrame:
    """A finished search's ``results.parquet``; Tune's experiment for one that has not finished (it has
    the trials that had not ended), or where the results table is missing."""
    tune_folder = path / TUNE_FOLDER
    has_tune = any(tune_folder.glob("experiment_state-*.json"))
    if has_tune and not (finished and (path / RESULTS_FILE).is_file()):
        return _trials_from_tune(tune_folder)
    if (path / RESULTS_FILE).is_file():
        return pd.read_parquet(path / RESULTS_FILE)
    raise DiffNASError(
        f"{str(path)!r} holds no search: neither {RESULTS_FILE} nor a Tune experiment in {TUNE_FOLDER}/ (a "
        f"search killed before Tune's first save leaves none); pass the --output folder of a ray-diffnas search."
    )


def _trials_from_tune(tune_folder: Path) -> pd.DataFrame:
    """The trials as Tune last saved them; one that had not ended (running, waiting, or in flight when the
    driver was killed) is ``unfinished``."""
    from ray.tune import ExperimentAnalysis, ResultGrid

    from ray_diffnas.app.console import quiet_unstarted_trials

    with quiet_unstarted_trials():
        analysis = ExperimentAnalysis(str(tune_folder))
    frame = results_frame(ResultGrid(analysis))
    ended = {trial.trial_id for trial in analysis.trials if trial.status in ("TERMINATED", "ERROR")}
    frame.loc[~frame["trial_id"].isin(ended), "status"] = UNFINISHED
    return frame


def _with_memory(trials: pd.DataFrame, memory: SearchMemory | None) -> pd.DataFrame:
    """Fills in who proposed each trial, and its architecture, from the memory where Tune kept no config (a
    trial that never started)."""
    if memory is None or trials.empty:
        return trials
    records = {record.trial_id: record for record in memory.records()}
    filled = trials.copy()
    for i, trial_id in enumerate(filled["trial_id"]):
        record = records.get(trial_id)
        if record is None:
            continue
        if not isinstance(filled.at[i, "proposer"], str):
            filled.at[i, "proposer"] = record.proposer
        if not isinstance(filled.at[i, "arch_key"], str) and record.arch_key:
            filled.at[i, "arch_key"] = record.arch_key
            filled.at[i, "arch"] = json.dumps(record.config.get("arch") or {}, sort_keys=True)
    return filled


def _memory(path: Path) -> tuple[SearchMemory | None, dict[str, Any]]:
    if not path.is_file():
        return None, {}
    try:
        return SearchMemory.load(path)
    except MemoryFileError as error:  # the report goes on without what the memory adds, and says why
        logger.warning("The search memory could not be read (%s); the report leaves out who proposed what.", error)
        return None, {}


def _options(path: Path) -> SearchOptions:
    if not path.is_file():
        return SearchOptions()
    try:
        return load_options(path.parent)
    except DiffNASError as error:
        logger.warning("%s; the report assumes the default options.", error)
        return SearchOptions()


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text())) if path.is_file() else None
    except ValueError:
        return None
