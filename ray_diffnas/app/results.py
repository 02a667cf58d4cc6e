"""A finished search as a table: one row per trial, written to Parquet, shown as a leaderboard."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from ray.tune import ResultGrid

from ray_diffnas.atomic import atomic_write
from ray_diffnas.searchers.memory import RANK_COLUMN, SCORED
from ray_diffnas.searchers.objective import Objective, with_best
from ray_diffnas.searchers.pareto import ParetoObjective, pareto_ranks
from ray_diffnas.spaces.unet_arch import UNetArch
from ray_diffnas.text_table import format_table
from ray_diffnas.trainable.reports import METRIC, MODE, REPORTED_METRICS
from ray_diffnas.trainable.settings import PROPOSER_KEY, TrainingSettings

RESULTS_FILE = "results.parquet"
# Whether a trial meets every --constraint (a column only where the search had constraints).
FEASIBLE_COLUMN = "meets_constraints"
OBJECTIVE = Objective(METRIC, MODE)  # what "best" means in the table
# What each trial cost beside its quality: its own wall time (over every restore), its process's CPU
# time, and the images it trained on.
COST_COLUMNS = ("wall_seconds", "cpu_seconds", "images_seen")
LEADERBOARD_COLUMNS = [
    "trial_id",
    "proposer",
    "status",
    "best_rfid",
    "training_iteration",
    "latency_ms",
    "params_m",
    *COST_COLUMNS,
    "arch_key",
]
INTEGER_COLUMNS = (
    "training_iteration",
    "wall_seconds",
    "cpu_seconds",
    "images_seen",
    RANK_COLUMN,
)  # shown without decimals


# A trial that has not ended: still running, waiting, or in flight when its driver was killed.
UNFINISHED = "unfinished"


def trial_status(error: Exception | None, iterations: int, max_iterations: int) -> str:
    """``failed`` (raised), ``completed`` (ran every iteration) or ``stopped`` (by the scheduler)."""
    if error is not None:
        return "failed"
    return "completed" if iterations >= max_iterations else "stopped"


def results_frame(grid: ResultGrid) -> pd.DataFrame:
    """One row per trial: architecture, settings, status, final and best metrics, RFID curve."""
    rows = [_row(grid[i]) for i in range(len(grid))]
    return best_first(pd.DataFrame(rows))


def best_first(frame: pd.DataFrame) -> pd.DataFrame:
    """Trials by best RFID, best first; trials without one last. With a ``pareto_rank`` column (a search
    with several objectives), the front first, then each layer behind it, each by best RFID; with a
    ``meets_constraints`` column (a search with constraints), the trials that meet them first."""
    if frame.empty:
        return frame
    keys = frame["best_rfid"].map(OBJECTIVE.sort_key).to_numpy()  # NaN: inf, last
    ranks = frame[RANK_COLUMN].astype(float).fillna(math.inf).to_numpy() if RANK_COLUMN in frame else [0] * len(frame)
    unmet = (~frame[FEASIBLE_COLUMN].astype(bool)).to_numpy() if FEASIBLE_COLUMN in frame else [False] * len(frame)
    # A trial with no RFID is last whatever else holds; sorted() is stable: ties keep their order
    order = sorted(range(len(frame)), key=lambda i: (keys[i] == math.inf, unmet[i], ranks[i], keys[i]))
    return frame.iloc[order].reset_index(drop=True)


def best_trial(frame: pd.DataFrame) -> pd.Series | None:
    """The trial a search names its best: the first with an RFID in :func:`ranked`'s order (the best
    RFID among the trials that meet the constraints, on the front with several objectives); None when
    no trial has an RFID."""
    scored = frame.dropna(subset=["best_rfid"])
    return None if scored.empty else scored.iloc[0]


def meets_no_constraint(frame: pd.DataFrame) -> bool:
    """Whether the search had constraints and no trial with an RFID met them (its best breaks one)."""
    scored = frame.dropna(subset=["best_rfid"])
    return FEASIBLE_COLUMN in frame and not scored.empty and not scored[FEASIBLE_COLUMN].astype(bool).any()


def with_pareto_ranks(frame: pd.DataFrame, target: ParetoObjective) -> pd.DataFrame:
    """Adds ``pareto_rank`` (0 = on the front) by the search's objectives, the best RFID of each trial
    standing for ``rfid``; failed, unfinished and infeasible trials get none. Rows come best first."""
    frame = frame.copy()
    frame[RANK_COLUMN] = pd.array([pd.NA] * len(frame), dtype="Int64")
    scored, costs = [], []
    for i, row in enumerate(frame.to_dict("records")):
        values = _as_ranked(row)
        point = target.costs(values)
        if row.get("status") in SCORED and point is not None and target.feasible(values):
            scored.append(i)
            costs.append(point)
    if scored:
        frame.loc[frame.index[scored], RANK_COLUMN] = pareto_ranks(costs)
    return best_first(frame)


def ranked(frame: pd.DataFrame, target: Objective | ParetoObjective) -> pd.DataFrame:
    """The trials in the order every view of a search shows them (leaderboards, report, summary): with
    constraints, the trials that meet them first (``meets_constraints``); with several objectives, by
    Pareto rank (``pareto_rank``); then by best RFID.

    Example:
        >>> frame = pd.DataFrame({"trial_id": ["fast", "best"], "status": ["completed"] * 2,
        ...                       "best_rfid": [3.0, 2.0], "latency_ms": [4.0, 9.0]})
        >>> shown = ranked(frame, Objective("rfid", "min", ["latency_ms<=5"]))
        >>> shown[["trial_id", "meets_constraints"]].values.tolist()
        [['fast', True], ['best', False]]
    """
    if target.constraints:
        frame = with_feasibility(frame, target)
    if isinstance(target, ParetoObjective):
        frame = with_pareto_ranks(frame, target)
    return best_first(frame)


def with_feasibility(frame: pd.DataFrame, target: Objective | ParetoObjective) -> pd.DataFrame:
    """Adds ``meets_constraints``: the target's feasibility policy, the best RFID of each trial standing
    for ``rfid`` (the value it is ranked by). Rows come as :func:`best_first` orders them."""
    frame = frame.copy()
    frame[FEASIBLE_COLUMN] = [target.feasible(_as_ranked(row)) for row in frame.to_dict("records")]
    return best_first(frame)


def _as_ranked(row: dict[str, Any]) -> dict[str, Any]:
    """A trial's metrics as it is ranked (:func:`with_best`): its best RFID stands for ``rfid``."""
    return with_best(row, row.get("best_rfid"), METRIC)


def _row(result: Any) -> dict[str, Any]:
    config, metrics = result.config or {}, result.metrics or {}
    curve = _rfid_curve(result.metrics_dataframe)
    settings = {k: config.get(k, v) for k, v in TrainingSettings().to_dict().items()}
    arch = config.get("arch") or {}
    iterations = int(metrics.get("training_iteration") or 0)
    row: dict[str, Any] = {
        "trial_id": metrics.get("trial_id") or Path(result.path).name,
        "proposer": config.get(PROPOSER_KEY),  # None for Tune's own searchers (random, Optuna)
        "status": trial_status(result.error, iterations, int(settings["max_iterations"])),
        "error": None if result.error is None else str(result.error).strip().splitlines()[-1][:500],
        "arch_key": _arch_key(arch, config.get("image_size")),
        "arch": json.dumps(arch, sort_keys=True),
        **{f"arch.{k}": v for k, v in arch.items()},
        **{f"train.{k}": v for k, v in settings.items()},
        **{k: _number(metrics.get(k)) for k in REPORTED_METRICS},
        "best_rfid": _finite(OBJECTIVE.best(curve)),
        "wall_seconds": _number(metrics.get("time_total_s")),  # the trial's own time, over every restore
        "started": _start_time(result.metrics_dataframe),
        "rfid_curve": curve,
        "rfid_features": metrics.get("rfid_features"),
        "checkpoint": _best_checkpoint_path(result),
        "trial_path": result.path,
    }
    return row


def _rfid_curve(history: pd.DataFrame | None) -> list[float]:
    """RFID at each iteration. A trial resumed from a checkpoint older than its last report trains
    and reports those iterations again: the last report of each iteration is the one that counts
    (as in the search memory), the one its model went on from."""
    if history is None or "rfid" not in history:
        return []
    if "training_iteration" in history:
        history = history.drop_duplicates("training_iteration", keep="last").sort_values("training_iteration")
    return [float(v) for v in history["rfid"]]


def _start_time(history: pd.DataFrame | None) -> float:
    """When the trial started (Unix seconds): its first report's time less the time it took. Trial ids
    of Searcher-made trials carry no counter, so this is what orders trials as they started."""
    if history is None or not {"timestamp", "time_total_s"} <= set(history) or history.empty:
        return math.nan
    first = history.iloc[0]
    return float(first["timestamp"]) - float(first["time_total_s"])


def _arch_key(arch: dict[str, Any], image_size: int | None) -> str | None:
    if not arch:  # Tune kept no config (a trial that never started): no architecture to name
        return None
    try:
        return UNetArch.from_dict(arch, image_size or 32).key()
    except ValueError:
        return None


def _finite(value: float | None) -> float:
    """NaN for a missing value (the table's spelling of it)."""
    return math.nan if value is None or not math.isfinite(value) else float(value)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def _best_checkpoint_path(result: Any) -> str | None:
    try:
        checkpoint = result.get_best_checkpoint("rfid", "min")
    except (RuntimeError, ValueError, KeyError):
        checkpoint = None
    checkpoint = checkpoint or result.checkpoint
    return None if checkpoint is None else checkpoint.path


def write_results(frame: pd.DataFrame, folder: Path) -> Path:
    """Writes ``results.parquet`` (a plain Parquet table pandas and DuckDB read)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return atomic_write(folder / RESULTS_FILE, lambda tmp: pq.write_table(table, tmp))


def leaderboard(frame: pd.DataFrame, top: int = 10) -> str:
    """The best trials by best RFID (the front first, with several objectives; the trials that meet the
    constraints first, with constraints), as a printable table. Rows come in the frame's order."""
    ordering = [c for c in (RANK_COLUMN, FEASIBLE_COLUMN) if c in frame]
    columns = [*LEADERBOARD_COLUMNS[:4], *ordering, *LEADERBOARD_COLUMNS[4:]]
    shown = frame[columns].head(top)
    rows = [
        [str(rank)] + [_cell(row[c], integer=c in INTEGER_COLUMNS) for c in columns]
        for rank, (_, row) in enumerate(shown.iterrows(), start=1)
    ]
    return format_table(["rank", *columns], rows, left=0)


def yes_no(value: Any) -> str | None:
    """A flag as the leaderboards show it (``yes`` / ``no``); None for a value that is not one."""
    return ("yes" if value else "no") if isinstance(value, (bool, np.bool_)) else None


def _cell(value: Any, integer: bool = False) -> str:
    if value is pd.NA:
        return "-"
    if (flag := yes_no(value)) is not None:
        return flag
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return str(int(value)) if integer else f"{value:.3f}"
    return "-" if value is None else str(value)
