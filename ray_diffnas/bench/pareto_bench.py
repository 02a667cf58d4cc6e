"""Judge searchers on a table for several objectives at once: how much of the table's Pareto front they find.

``ray-diffnas bench-table --objective cifar10_valid_acc:max --objective latency_fpga_ms:min`` runs each
searcher as :class:`~ray_diffnas.bench.harness.TableBenchmark` does (one real Tune run per seed, one table
look-up per query) and scores each query by the front of the feasible rows queried so far:

- **Hypervolume ratio**: its hypervolume as a share of the table's true front's (1 = the whole front
  found). The reference point is the true front's nadir (its worst value in each objective) moved out by
  ``REFERENCE_MARGIN`` of the front's range, so that every point of the true front counts and points
  worse than the whole front in some objective add nothing. The summary states it in the metrics' units.
- **IGD**: the mean distance from each point of the true front to the nearest point found, each
  objective divided by the true front's range (NaN before the first feasible query).

In the trajectory, ``best_so_far`` holds the hypervolume ratio and ``regret`` its gap to 1, so the
summary's statistics (median and mean with bootstrap 95 % intervals at 10, 25, 50 and 100 queries) and
the plot read them as they read one objective; ``igd`` has a column and statistics of its own.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ray_diffnas.bench.harness import (
    REFERENCE_SEARCHER,
    RunRecord,
    TableBenchmark,
    checkpoints,
    open_table,
    values_at,
)
from ray_diffnas.bench.screen import screen_summary
from ray_diffnas.bench.stats import bootstrap_interval
from ray_diffnas.bench.table import ArchTable, TableError
from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.pareto import (
    REFERENCE_MARGIN,
    ParetoObjective,
    hypervolume,
    igd,
    non_dominated,
    reference_point,
)


class ParetoBenchmark(TableBenchmark):
    """Runs searchers on a table and scores the front each finds against the table's true front.

    Args:
        table: The table (see :func:`ray_diffnas.bench.table.load_table`, or use :meth:`from_file`).
        target: The objectives (two or more) and the constraints.
        **kwargs: As for :class:`TableBenchmark` (``max_concurrent_trials``, ``llm``, ``address``...);
            the scheduler is ``none``: ASHA stops trials by one metric.

    Example:
        >>> from ray_diffnas.spaces.nb201 import NB201Space
        >>> space = NB201Space()
        >>> rng = np.random.default_rng(0)
        >>> keys = sorted({space.sample(rng).key() for _ in range(200)})
        >>> frame = pd.DataFrame({"arch": keys, "acc": [float(k.count("conv")) for k in keys],
        ...                       "ms": [1.0 + k.count("conv_3x3") for k in keys]})
        >>> from ray_diffnas.bench.table import load_table
        >>> bench = ParetoBenchmark(load_table(frame, space), ParetoObjective(["acc", "ms"], ["max", "min"]))
        >>> bench.front_values().tolist()[:2]
        [[6.0, 4.0], [5.0, 2.0]]
    """

    def __init__(self, table: ArchTable, target: ParetoObjective, **kwargs: Any) -> None:
        if kwargs.get("scheduler", "none") != "none":
            raise ConfigError("ASHA replay stops trials by one metric: with several objectives use --scheduler none.")
        self.pareto = target  # before the base class asks which rows are feasible
        super().__init__(table, target.metrics[0], target.modes[0], target.constraints, **kwargs)
        for metric in target.metrics[1:]:
            table.require_metric(metric, "objective")
        self.front_keys, self.front = self._true_front()
        span = np.ptp(self.front, axis=0)
        self.scale = np.where(span > 0, span, 1.0)  # a flat objective still divides by 1
        self.reference = reference_point(self.front)
        self.front_hypervolume = hypervolume(self.front, self.reference)
        if not self.front_hypervolume > 0:
            raise TableError(f"The true front of {self.table.source!r} has no hypervolume; check the objectives.")
        self.optimum = 1.0  # the hypervolume ratio of the whole true front

    @classmethod
    def from_file(  # type: ignore[override]  # several objectives, not one
        cls,
        path: str | os.PathLike,
        objectives: Sequence[str],
        *,
        space: str | Any | None = None,
        arch_column: str | None = None,
        constraints: Sequence[str] = (),
        **kwargs: Any,
    ) -> ParetoBenchmark:
        """Loads a CSV/Parquet table; ``objectives`` as ``["COL:max", "COL:min", ...]``."""
        target = ParetoObjective.parse(objectives, constraints)  # bad objectives fail before the table is read
        return cls(open_table(path, space, arch_column), target, **kwargs)

    # --- the table's side -----------------------------------------------------------------

    def _row_feasible(self, row: dict[str, float]) -> bool:
        return self.pareto.costs(row) is not None and self.pareto.feasible(row)

    def _true_front(self) -> tuple[list[str], np.ndarray]:
        keys = [key for key, feasible in self.feasible.items() if feasible]
        if not keys:
            raise TableError(
                f"No row of {self.table.source!r} reports every objective {self.pareto.metrics}"
                + (f" and meets the constraints {[str(c) for c in self.constraints]}" if self.constraints else "")
                + "."
            )
        costs = np.array([self.pareto.costs(self.table.rows[key]) for key in keys])
        mask = non_dominated(costs)
        order = np.lexsort(costs[mask].T[::-1])  # by the first objective, then the next
        return [keys[i] for i in np.flatnonzero(mask)[order]], costs[mask][order]

    def front_values(self) -> np.ndarray:
        """The true front in the metrics' own units (one row per architecture, best first objective first)."""
        return self.pareto.values(self.front)

    def table_info(self) -> dict[str, Any]:
        info = super().table_info()
        for key in ("optimum", "optimum_arch", "optimum_row", "uniform_draw_mean_regret"):  # one objective's
            info.pop(key)
        values = self.front_values()
        info.update(
            objectives=self.pareto.metrics,
            modes=self.pareto.modes,
            front=[
                {"arch": key, **dict(zip(self.pareto.metrics, map(float, row)))}
                for key, row in zip(self.front_keys, values)
            ],
            reference_point=dict(zip(self.pareto.metrics, map(float, self.pareto.values(self.reference)))),
            reference_margin=REFERENCE_MARGIN,
            front_hypervolume=self.front_hypervolume,
        )
        return info

    # --- running ----------------------------------------------------------------------------

    def tune_objective(self) -> dict[str, Any]:
        return {"metric": None, "mode": None}  # TuneConfig holds one metric: the searchers get the list

    def searched_objective(self) -> ParetoObjective:
        return self.pareto

    def run_settings(self, budget: int) -> dict[str, Any]:
        return {**super().run_settings(budget), "objectives": self.pareto.metrics, "modes": self.pareto.modes}

    def scored_metrics(self) -> list[str]:
        return list(dict.fromkeys([*self.pareto.metrics, *super().scored_metrics()]))

    def regret_label(self) -> str:
        return "1 - hypervolume ratio (0 = the table's whole front found)"

    # --- scoring ----------------------------------------------------------------------------

    def _with_progress(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Adds the query number, duplicates, and after each query the hypervolume ratio of the feasible
        rows found so far (``best_so_far``), its gap to 1 (``regret``) and their IGD."""
        self._count_queries(frame)
        found: list[np.ndarray] = []
        ratios, distances = [], []
        for _, row in frame.iterrows():
            costs = self.pareto.costs(row.to_dict()) if row["feasible"] else None
            if costs is not None:
                found.append(costs)
                front = np.array(found)
                found = list(front[non_dominated(front)])  # only the front can add hypervolume later
            ratios.append(hypervolume(found, self.reference) / self.front_hypervolume if found else 0.0)
            distances.append(igd(found, self.front, self.scale) if found else math.nan)
        frame["best_so_far"] = ratios
        frame["regret"] = 1.0 - frame["best_so_far"]
        frame["igd"] = distances
        return frame

    def summarize(
        self, runs: Sequence[RunRecord], budget: int, against: Sequence[str] = (REFERENCE_SEARCHER,)
    ) -> dict[str, Any]:
        summary = super().summarize(runs, budget, against)
        summary.update(objective="hypervolume_ratio", mode="max", objectives=self.pareto.metrics)
        summary["modes"] = self.pareto.modes
        return summary

    def uniform_draw_regret(self) -> float | None:
        return None  # regret is one objective's; the front is judged by its hypervolume

    @property
    def no_pick_regret(self) -> float:
        return 1.0  # no feasible row found: an empty front, hypervolume ratio 0

    def _source_summary(self, runs: list[RunRecord]) -> dict[str, Any] | None:
        return None  # a source's regret needs one objective

    def _screen_summary(self, runs: list[RunRecord]) -> dict[str, Any] | None:
        return screen_summary(runs, self._true_value, None)  # the counts: a regret needs one objective

    def _summarize_searcher(self, runs: list[RunRecord], budget: int) -> dict[str, Any]:
        stats = super()._summarize_searcher(runs, budget)
        for count in checkpoints(budget):
            distance = values_at(runs, "igd", count)
            seen = distance[~np.isnan(distance)]  # IGD is NaN until a run's first feasible query
            stats["checkpoints"][str(count)].update(
                # the hypervolume ratio is 0 (not NaN) before that, so the base class would count every seed
                seeds_with_a_feasible_query=len(seen),
                mean_igd=float(seen.mean()) if len(seen) else None,
                mean_igd_ci95=bootstrap_interval(distance, np.mean),
                median_igd=float(np.median(seen)) if len(seen) else None,
            )
        return stats
