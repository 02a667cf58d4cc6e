"""``bench.png``: regret against queries, one line per searcher, for a tabular benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from ray_diffnas.bench.stats import CONFIDENCE, bootstrap_interval

POINTS = 100  # budgets at which the curves are drawn


def plot_bench(
    trajectories: pd.DataFrame,
    optimum: float,
    path: str | Path,
    *,
    objective: str = "objective",
    budget: int | None = None,
    asha: bool = False,
    ylabel: str | None = None,
) -> Path:
    """Draws each searcher's mean regret over seeds with its bootstrap 95 % band.

    Args:
        trajectories: Rows of ``searcher``, ``seed``, ``budget_used`` and ``regret`` (what
            :class:`~ray_diffnas.bench.harness.TableBenchmark` writes to ``trajectories.parquet``).
        optimum: The table's best (feasible) objective value, named in the title.
        path: The PNG file to write.
        objective: The objective's name, for the axis label.
        budget: The largest budget drawn (default: the largest budget used).
        asha: Whether the budget is full trials' worth of iterations (ASHA replay), for the axis label.
        ylabel: What the regret is, for the axis (default: the regret in ``objective``).

    Example:
        >>> frame = pd.DataFrame({"searcher": "random", "seed": [0, 0, 1, 1], "budget_used": [1.0, 2, 1, 2],
        ...                       "regret": [2.0, 1.0, 2.5, 0.5]})
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     plot_bench(frame, 3.0, os.path.join(folder, "bench.png")).exists()
        True
    """
    # A bare Figure (no pyplot): no global backend switch and no figure kept alive by a library call.
    fig = Figure(figsize=(7.5, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    largest = float(budget or (trajectories["budget_used"].max() if len(trajectories) else 1))
    grid = np.geomspace(1.0, max(largest, 1.0), POINTS)  # a log axis: the early queries are where searchers differ
    for searcher, group in trajectories.groupby("searcher", sort=False):
        mean, low, high, seeds = _band(group, grid)
        (line,) = ax.plot(grid, mean, lw=1.8, label=f"{searcher} ({seeds} seeds)")
        ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, lw=0)
    ax.set(
        xlabel="full trials of compute (ASHA replay)" if asha else "queries (table look-ups)",
        ylabel=ylabel or f"regret in {objective} (0 = the table's best)",
        title=f"Mean regret over seeds, band = bootstrap {CONFIDENCE:.0%} interval (optimum {optimum:.6g})",
        xlim=(1, max(largest, 2)),
    )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())  # 1, 10, 100 rather than 10^0, 10^1, 10^2
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def _band(group: pd.DataFrame, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Mean regret and its interval at each budget of ``grid``; a seed's regret at a budget is its
    value after the last query that fit in it (before its first feasible query, the worst feasible row's:
    the harness charges a search with no pick so)."""
    runs = [run.sort_values("budget_used") for _, run in group.groupby("seed")]
    values = np.full((len(grid), len(runs)), np.nan)
    for j, run in enumerate(runs):
        at = np.searchsorted(run["budget_used"].to_numpy(), grid + 1e-9, side="right") - 1
        regret = run["regret"].to_numpy(dtype=float)
        values[at >= 0, j] = regret[at[at >= 0]]
    mean = np.full(len(grid), np.nan)
    low, high = mean.copy(), mean.copy()
    for i, row in enumerate(values):
        if np.isnan(row).all():
            continue
        mean[i] = np.nanmean(row)
        interval = bootstrap_interval(row)
        low[i], high[i] = interval if interval else (mean[i], mean[i])
    return mean, low, high, len(runs)
