"""Several objectives at once: dominance, Pareto ranks, hypervolume and IGD, stated once.

Every function works on *costs*: one row per point, one column per objective, lower is better.
:meth:`ParetoObjective.costs` turns reported metrics into costs (a ``max`` objective is negated),
so that no other part of the project flips signs on its own.

- **Dominance**: ``a`` dominates ``b`` when ``a`` is no worse in every objective and better in one.
  Equal points do not dominate each other: both are on the front.
- **Pareto rank**: 0 for the non-dominated points, 1 for those only the rank-0 points dominate, ...
- **Hypervolume**: the volume the points dominate, bounded by a reference point that every counted
  point must beat in every objective (exact; the sweep in 2-D, slicing by the last objective above).
- **IGD** (inverted generational distance): the mean distance from each point of a reference front
  (e.g. a table's true front) to the nearest found point, each objective divided by a scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.objective import Constraint, Objective, parse_constraints, with_best

_CHUNK = 1024  # rows compared at once by non_dominated: bounds its memory on large tables


@dataclass(frozen=True)
class ParetoObjective:
    """Several metrics, each in its own direction, under shared constraints: what a multi-objective
    search aims at (Ray Tune's ``metric=[...], mode=[...]``).

    Args:
        metrics: The metrics, in order.
        modes: ``min`` or ``max`` for each metric.
        constraints: Bounds on reported metrics (as for :class:`Objective`).

    Example:
        >>> target = ParetoObjective(["rfid", "latency_ms"], ["min", "min"])
        >>> target.costs({"rfid": 3.0, "latency_ms": 2.0}).tolist(), target.costs({"rfid": 3.0})
        ([3.0, 2.0], None)
        >>> ParetoObjective.parse(["acc:max", "latency_ms:min"]).costs({"acc": 90.0, "latency_ms": 1.5}).tolist()
        [-90.0, 1.5]
    """

    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()

    def __init__(
        self,
        metrics: Sequence[str],
        modes: Sequence[str],
        constraints: Mapping[str, Any] | Iterable[Any] | None = (),
    ) -> None:
        if isinstance(metrics, str) or isinstance(modes, str):
            raise ConfigError("A multi-objective search takes a list of metrics and a list of modes.")
        if len(metrics) < 2 or len(metrics) != len(modes):
            raise ConfigError(
                f"A multi-objective search needs two or more metrics, each with a mode; got metrics "
                f"{list(metrics)} and modes {list(modes)}."
            )
        if len(set(metrics)) != len(metrics):
            raise ConfigError(f"The objectives name a metric twice: {list(metrics)}.")
        object.__setattr__(self, "objectives", tuple(Objective(m, mode) for m, mode in zip(metrics, modes)))
        object.__setattr__(self, "constraints", tuple(parse_constraints(constraints)))

    @classmethod
    def parse(cls, texts: Sequence[str], constraints: Sequence[Any] = ()) -> ParetoObjective:
        """``["rfid:min", "latency_ms:min"]`` (the command line's ``--objective``, repeated)."""
        parsed = [Objective.parse(text) for text in texts]
        return cls([o.metric for o in parsed], [o.mode for o in parsed], constraints)

    @property
    def metrics(self) -> list[str]:
        return [o.metric for o in self.objectives]

    @property
    def modes(self) -> list[str]:
        return [o.mode for o in self.objectives]

    def costs(self, metrics: Mapping[str, Any]) -> np.ndarray | None:
        """The point's costs (lower is better in each), or None when an objective is missing."""
        costs = []
        for objective in self.objectives:
            value = objective.value(metrics)
            if value is None:
                return None
            costs.append(value if objective.mode == "min" else -value)
        return np.array(costs, dtype=float)

    def point(self, last: Mapping[str, Any], best: float | None) -> dict[str, Any]:
        """What places a finished trial on the front: its ``best`` value of the first metric over the trial
        (the value leaderboards rank it by; its last can be worse), the other metrics as it ``last``
        reported them (a UNet's latency, params and FLOPs do not change while it trains).

        Example:
            >>> ParetoObjective(["rfid", "latency_ms"], ["min", "min"]).point({"rfid": 4.0, "latency_ms": 2.0}, 3.0)
            {'rfid': 3.0, 'latency_ms': 2.0}
        """
        return with_best(last, best, self.metrics[0])

    def values(self, costs: np.ndarray) -> np.ndarray:
        """The metrics' values back from costs (each ``max`` column negated again)."""
        signs = np.array([1.0 if o.mode == "min" else -1.0 for o in self.objectives])
        return np.asarray(costs, dtype=float) * signs

    def feasible(self, metrics: Mapping[str, Any]) -> bool:
        """Every constraint reported and met (the single-objective policy, :meth:`Objective.feasible`)."""
        return Objective(self.metrics[0], self.modes[0], self.constraints).feasible(metrics)

    def describe(self) -> str:
        text = " and ".join(o.describe() for o in self.objectives)
        if self.constraints:
            text += ". Constraints (a trial counts only if it meets all of them): " + ", ".join(
                map(str, self.constraints)
            )
        return text


Points = np.ndarray | Sequence[Sequence[float]] | Sequence[np.ndarray]


def non_dominated(costs: Points) -> np.ndarray:
    """A mask of the points no other point dominates.

    Example:
        >>> non_dominated([[1, 3], [2, 2], [3, 3], [2, 2]]).tolist()
        [True, True, False, True]
    """
    points = _as_points(costs)
    keep = np.ones(len(points), dtype=bool)
    for start in range(0, len(points), _CHUNK):
        block = points[start : start + _CHUNK]
        # dominated[i, j]: point j dominates block point i
        no_worse = np.all(points[None, :, :] <= block[:, None, :], axis=2)
        better = np.any(points[None, :, :] < block[:, None, :], axis=2)
        keep[start : start + len(block)] = ~np.any(no_worse & better, axis=1)
    return keep


def pareto_ranks(costs: Points) -> np.ndarray:
    """Each point's Pareto rank: 0 on the front, then 1 on the front of the rest, and so on.

    Example:
        >>> pareto_ranks([[1, 3], [2, 2], [3, 3], [4, 4]]).tolist()
        [0, 0, 1, 2]
    """
    points = _as_points(costs)
    ranks = np.full(len(points), -1, dtype=int)
    remaining = np.arange(len(points))
    rank = 0
    while len(remaining):
        front = non_dominated(points[remaining])
        ranks[remaining[front]] = rank
        remaining = remaining[~front]
        rank += 1
    return ranks


def hypervolume(costs: Points, reference: Sequence[float] | np.ndarray) -> float:
    """The volume dominated by the points and bounded by ``reference`` (points not better than the
    reference in every objective add nothing).

    Example:
        >>> hypervolume([[1, 3], [2, 2], [3, 1]], [4, 4])
        6.0
        >>> hypervolume([[5, 1]], [4, 4])
        0.0
    """
    points = _as_points(costs)
    ref = np.asarray(reference, dtype=float)
    if points.shape[1] != len(ref):
        raise ValueError(f"The reference point has {len(ref)} objectives, the points {points.shape[1]}.")
    points = points[np.all(points < ref, axis=1)]
    if not len(points):
        return 0.0
    return float(_volume(points[non_dominated(points)], ref))


def _volume(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume of non-dominated points that all beat ``ref``."""
    if points.shape[1] == 1:
        return float(ref[0] - points[:, 0].min())
    if points.shape[1] == 2:  # sweep: sorted by the first cost, the second falls along the front
        ordered = points[np.argsort(points[:, 0], kind="stable")]
        ceiling, volume = ref[1], 0.0
        for x, y in ordered:
            if y < ceiling:
                volume += (ref[0] - x) * (ceiling - y)
                ceiling = y
        return volume
    # Slices along the last objective: between two consecutive levels, the points at or below the
    # lower level dominate a fixed (d-1)-dimensional region.
    order = np.argsort(points[:, -1], kind="stable")
    levels = [*points[order, -1], ref[-1]]
    volume = 0.0
    for i in range(len(order)):
        thickness = levels[i + 1] - levels[i]
        if thickness > 0:
            below = points[order[: i + 1], :-1]
            volume += thickness * _volume(below[non_dominated(below)], ref[:-1])
    return volume


REFERENCE_MARGIN = 0.1  # of the points' range, beyond their worst value: where the hypervolume is bounded


def reference_point(costs: Points, margin: float = REFERENCE_MARGIN) -> np.ndarray:
    """A hypervolume reference point for ``costs``: their worst value in each objective, moved out by
    ``margin`` of their range (by ``margin`` itself where all are equal), so that every point counts.

    Example:
        >>> reference_point([[1.0, 3.0], [2.0, 1.0]]).tolist()
        [2.1, 3.2]
    """
    points = _as_points(costs)
    span = np.ptp(points, axis=0)
    return points.max(axis=0) + margin * np.where(span > 0, span, 1.0)


def hypervolume_contributions(costs: Points, reference: Sequence[float] | np.ndarray) -> np.ndarray:
    """What each point alone adds to the hypervolume (0 for a dominated point or a duplicate).

    Example:
        >>> hypervolume_contributions([[1, 3], [2, 2], [3, 1]], [4, 4]).tolist()
        [1.0, 1.0, 1.0]
    """
    points = _as_points(costs)
    total = hypervolume(points, reference)
    everyone = np.arange(len(points))
    return np.array([total - hypervolume(points[everyone != i], reference) for i in everyone])


def igd(
    costs: Points,
    front: Points,
    scale: Sequence[float] | np.ndarray | None = None,
) -> float:
    """Inverted generational distance: the mean, over the points of ``front``, of the distance to the
    nearest of ``costs`` (each objective divided by ``scale``, default 1). Infinite with no points.

    Example:
        >>> igd([[0, 1], [1, 0]], [[0, 1], [1, 0]]), igd([[0, 1]], [[0, 1], [1, 0]])
        (0.0, 0.7071067811865476)
    """
    found, reference = _as_points(costs), _as_points(front)
    if not len(found):
        return float("inf")
    divisor = np.ones(reference.shape[1]) if scale is None else np.asarray(scale, dtype=float)
    if np.any(divisor <= 0):
        raise ValueError(f"IGD's scale must be positive in every objective, but got {list(divisor)}.")
    distances = np.linalg.norm((reference[:, None, :] - found[None, :, :]) / divisor, axis=2)
    return float(distances.min(axis=1).mean())


def _as_points(costs: Points) -> np.ndarray:
    points = np.asarray(costs, dtype=float)
    if points.ndim != 2:
        points = points.reshape(len(points), -1) if points.size else np.zeros((0, 1))
    if not np.all(np.isfinite(points)):
        raise ValueError("Costs must be finite: leave out points with a missing objective.")
    return points
