"""The results table: its RFID curve (one value per iteration, as in the search memory), and the order
every view of a search shows its trials in."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ray_diffnas.app.options import SearchOptions, save_options
from ray_diffnas.app.report.folder import read_search_folder
from ray_diffnas.app.report.page import write_report
from ray_diffnas.app.results import (
    FEASIBLE_COLUMN,
    RESULTS_FILE,
    _rfid_curve,
    best_trial,
    leaderboard,
    meets_no_constraint,
    ranked,
)


def test_a_re_run_iteration_counts_once_with_its_last_report() -> None:
    """A trial resumed from an older checkpoint reports iteration 2 again: the re-run is what its model went on from."""
    history = pd.DataFrame({"training_iteration": [1, 2, 2, 3], "rfid": [40.0, 26.2, 26.3, 20.0]})
    assert _rfid_curve(history) == [40.0, 26.3, 20.0]


def test_a_history_without_rfid_has_no_curve() -> None:
    assert _rfid_curve(None) == [] and _rfid_curve(pd.DataFrame({"loss": [1.0]})) == []


def _trials() -> pd.DataFrame:
    """Three finished trials (the best RFID is too slow for ``latency_ms<=5``), and one that failed before
    its first RFID (fast enough, but with nothing to rank it by)."""
    return pd.DataFrame(
        {
            "trial_id": ["slow_best", "fast", "fast_worse", "failed"],
            "proposer": ["graph"] * 4,
            "status": ["completed"] * 3 + ["failed"],
            "best_rfid": [2.0, 3.0, 4.0, math.nan],
            "rfid_curve": [[2.5, 2.0], [3.5, 3.0], [4.5, 4.0], []],
            "training_iteration": [2, 2, 2, 0],
            "latency_ms": [9.0, 4.0, 1.0, 2.0],
            "params_m": [1.0] * 4,
            "wall_seconds": [1.0] * 4,
            "cpu_seconds": [1.0] * 4,
            "images_seen": [10.0] * 4,
            "arch_key": ["a", "b", "c", "d"],
            "checkpoint": [None] * 4,
        }
    )


def test_with_constraints_every_view_ranks_the_trials_that_meet_them_first(tmp_path: Path) -> None:
    """The summary names the best trial that meets the constraints; the leaderboard and the report put it
    first too (they ranked by RFID alone, a trial that breaks the constraint on top) and say which meet them."""
    options = SearchOptions(constraints=("latency_ms<=5",), num_samples=3)
    frame = ranked(_trials(), options.target())
    assert frame["trial_id"].tolist() == ["fast", "fast_worse", "slow_best", "failed"]  # no RFID: last
    assert frame[FEASIBLE_COLUMN].tolist() == [True, True, False, True]
    assert best_trial(frame)["trial_id"] == "fast" and not meets_no_constraint(frame)

    rows = [line.split() for line in leaderboard(frame).splitlines()[1:]]
    assert [row[1] for row in rows] == ["fast", "fast_worse", "slow_best", "failed"]
    assert [row[5] for row in rows] == ["yes", "yes", "no", "yes"]  # the column after best_rfid

    # The report of the folder, read back from its results table as `ray-diffnas report` reads it.
    folder = tmp_path / "search"
    folder.mkdir()
    save_options(options, folder)
    _trials().to_parquet(folder / RESULTS_FILE)  # in RFID order, as a table from an older version holds it
    read = read_search_folder(folder)
    assert read.trials["trial_id"].tolist() == ["fast", "fast_worse", "slow_best", "failed"]
    page = write_report(read, samples=0).read_text()
    assert "meets constraints" in page and "latency_ms&lt;=5" in page
    assert "b: RFID 3.000 (trial fast)" in page and "no trial met" not in page
    assert '<td data-sort="1">yes</td>' in page and '<td data-sort="0">no</td>' in page  # the flag sorts


def test_without_constraints_the_order_is_by_rfid_and_no_column_is_added() -> None:
    frame = ranked(_trials(), SearchOptions().target())
    assert frame["trial_id"].tolist() == ["slow_best", "fast", "fast_worse", "failed"]
    assert FEASIBLE_COLUMN not in frame and "meets_constraints" not in leaderboard(frame)


def test_when_no_trial_meets_the_constraints_the_best_rfid_is_named_and_said_to_break_them() -> None:
    frame = ranked(_trials(), SearchOptions(constraints=("latency_ms<=0.5",)).target())
    assert best_trial(frame)["trial_id"] == "slow_best" and meets_no_constraint(frame)
    # A trial without an RFID that meets them does not count: nothing ranks it
    frame = ranked(_trials(), SearchOptions(constraints=("latency_ms>=1.5", "latency_ms<=3")).target())
    assert frame["trial_id"].tolist()[-1] == "failed" and meets_no_constraint(frame)
