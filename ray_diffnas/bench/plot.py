"""``bench.png``: best objective so far against queries, one line per searcher, for a tabular benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ray_diffnas.searchers.objective import Objective


def plot_bench(
    trajectories: pd.DataFrame,
    optimum: float,
    path: str | Path,
    *,
    objective: str = "objective",
    mode: str = "max",
    budget: int | None = None,
) -> Path:
    """Draws the mean best-so-far over seeds, with the interquartile band, and the table optimum.

    Args:
        trajectories: Rows of ``searcher``, ``seed``, ``query`` (1-based) and ``best_so_far``
            (what :class:`~ray_diffnas.bench.harness.TableBenchmark` writes to ``trajectories.parquet``).
        optimum: The table's best (feasible) objective value, drawn dashed.
        path: The PNG file to write.
        objective: The objective's name, for the axis label.
        mode: ``max`` or ``min``, for the axis label.
        budget: Queries per run (default: the largest query index).

    Example:
        >>> frame = pd.DataFrame({"searcher": "random", "seed": [0, 0, 1, 1], "query": [1, 2, 1, 2],
        ...                       "best_so_far": [1.0, 2.0, 0.5, 2.5]})
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     plot_bench(frame, 3.0, os.path.join(folder, "bench.png")).exists()
        True
    """
    # A bare Figure (no pyplot): no global backend switch and no figure kept alive by a library call.
    fig = Figure(figsize=(7.5, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    budget = int(budget or (trajectories["query"].max() if len(trajectories) else 1))
    for searcher, group in trajectories.groupby("searcher", sort=False):
        queries, mean, low, high, seeds = _band(group, budget)
        (line,) = ax.plot(queries, mean, lw=1.8, label=f"{searcher} ({seeds} seeds)")
        ax.fill_between(queries, low, high, color=line.get_color(), alpha=0.2, lw=0)
    ax.axhline(optimum, ls="--", color="k", lw=1, label=f"table optimum {optimum:.6g}")
    better = Objective(objective, mode).direction
    ax.set(
        xlabel="queries (table look-ups)",
        ylabel=f"best {objective} so far ({better} is better)",
        title="Best found vs queries: mean over seeds, band = interquartile range",
        xlim=(1, max(budget, 2)),
    )
    ax.legend(loc="lower right" if mode == "max" else "upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def _band(group: pd.DataFrame, budget: int) -> tuple[np.ndarray, ...]:
    """Mean and quartiles across seeds at each query; a run that ended early keeps its last value."""
    wide = group.pivot(index="query", columns="seed", values="best_so_far").reindex(range(1, budget + 1)).ffill()
    values = wide.to_numpy(dtype=float)
    with np.errstate(all="ignore"):
        present = ~np.isnan(values).all(axis=1)  # before any seed's first feasible query: no point
        mean = np.full(len(values), np.nan)
        low, high = mean.copy(), mean.copy()
        mean[present] = np.nanmean(values[present], axis=1)
        low[present], high[present] = np.nanpercentile(values[present], [25, 75], axis=1)
    return wide.index.to_numpy(), mean, low, high, wide.shape[1]
