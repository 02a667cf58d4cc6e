"""The objective of a search: the metric, its direction and the constraints, with one policy for each question.

Every part that asks "is this value better", "does this trial count as feasible" or "did this
trial report the metric at all" asks an :class:`Objective`: the searchers, the search memory, the
LLM's prompt, the tabular benchmark and the command's results.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping, Sequence, get_args

from ray_diffnas.errors import ConfigError

Mode = Literal["min", "max"]
MODES: tuple[str, ...] = get_args(Mode)

_PATTERN = re.compile(r"^\s*([A-Za-z_][\w./-]*)\s*(<=|>=|<|>)\s*([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Constraint:
    """A bound on one metric a trial reports.

    Example:
        >>> c = Constraint.parse("latency_ms<=5")
        >>> c.holds({"latency_ms": 4.2}), c.holds({"latency_ms": 7.0}), c.holds({})
        (True, False, None)
    """

    metric: str
    op: str  # <=, >=, <, >
    bound: float

    @classmethod
    def parse(cls, text: str) -> Constraint:
        match = _PATTERN.match(str(text))
        if not match:
            raise ConfigError(
                f"Constraint {text!r} is not of the form METRIC<=VALUE or METRIC>=VALUE "
                f"(e.g. 'latency_ms<=5' or 'params>=1e5')."
            )
        return cls(match.group(1), match.group(2), float(match.group(3)))

    def holds(self, metrics: Mapping[str, Any]) -> bool | None:
        """True / False when the metric was reported, None when it is missing (see :func:`reported`)."""
        value = reported(metrics, self.metric)
        if value is None:
            return None
        return {"<=": value <= self.bound, ">=": value >= self.bound, "<": value < self.bound, ">": value > self.bound}[
            self.op
        ]

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"


def parse_constraints(constraints: Mapping[str, Any] | Iterable[Any] | None) -> list[Constraint]:
    """Accepts ``{"latency_ms": 5.0}`` (an upper bound; also as JSON text), ``["latency_ms<=5"]``
    or ``Constraint``s."""
    if constraints is None:
        return []
    if isinstance(constraints, str) and constraints.lstrip().startswith("{"):
        try:
            constraints = json.loads(constraints)
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"Constraints {constraints!r} are not valid JSON ({error}); "
                f"write e.g. '{{\"latency_ms\": 5.0}}' or 'latency_ms<=5'."
            ) from None
    if isinstance(constraints, str):
        constraints = [constraints]
    if isinstance(constraints, Mapping):
        parsed = []
        for metric, bound in constraints.items():
            if not isinstance(bound, numbers.Real) or isinstance(bound, bool):
                raise ConfigError(
                    f"constraints[{metric!r}] must be a number (an upper bound), but got {bound!r}; "
                    f"for a lower bound pass a string such as '{metric}>=1.0'."
                )
            parsed.append(Constraint(str(metric), "<=", float(bound)))
        return parsed
    return [c if isinstance(c, Constraint) else Constraint.parse(c) for c in constraints]


def reported(metrics: Mapping[str, Any], name: str) -> float | None:
    """The value of ``name`` in ``metrics`` as a float, or None when it counts as missing.

    Missing means: absent, not a real number (text, bools), or not finite (NaN and infinities: a
    trial reports ``rfid`` NaN when it fails, and an infinite loss is no measurement).

    Example:
        >>> reported({"rfid": 3}, "rfid"), reported({"rfid": float("nan")}, "rfid"), reported({}, "rfid")
        (3.0, None, None)
    """
    value = metrics.get(name)
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(float(value)):
        return None
    return float(value)


def with_best(last: Mapping[str, Any], best: float | None, metric: str) -> dict[str, Any]:
    """A finished trial's metrics as it is ranked: its ``best`` value of ``metric`` over the trial (the
    value leaderboards rank it by; its last can be worse), the others as it ``last`` reported them (a
    UNet's latency, params and FLOPs do not change while it trains).

    Example:
        >>> with_best({"rfid": 4.0, "latency_ms": 2.0}, 3.0, "rfid")
        {'rfid': 3.0, 'latency_ms': 2.0}
    """
    return dict(last) if best is None else {**last, metric: best}


@dataclass(frozen=True)
class Objective:
    """What a search optimises: one metric in one direction, subject to constraints.

    The policy, stated once:

    - **Missing**: a metric that is absent, not a number, NaN or infinite is missing
      (:func:`reported`).
    - **Better**: a reported value beats a missing one; two reported values compare by ``mode``;
      ties are not better.
    - **Feasible**: a result is feasible when every constraint's metric was reported *and* is
      within its bound. A constrained metric that is missing makes the result infeasible: nothing
      was measured that could show it meets the bound.

    Args:
        metric: The metric to optimise.
        mode: ``min`` or ``max``.
        constraints: Bounds on other metrics (see :func:`parse_constraints` for the forms).
        note: What the metric means, in a sentence (the LLM's prompt shows it).

    Example:
        >>> objective = Objective("rfid", "min", ["latency_ms<=5"])
        >>> objective.better(2.0, 3.0), objective.better(2.0, None), objective.better(None, 2.0)
        (True, True, False)
        >>> objective.feasible({"rfid": 2.0, "latency_ms": 4.0}), objective.feasible({"rfid": 2.0})
        (True, False)
        >>> Objective.parse("cifar10_valid_acc:max").describe()
        "'cifar10_valid_acc' (higher is better)"
    """

    metric: str
    mode: Mode = "min"
    constraints: tuple[Constraint, ...] = ()
    note: str | None = None

    def __init__(
        self,
        metric: str,
        mode: str = "min",
        constraints: Mapping[str, Any] | Iterable[Any] | None = (),
        note: str | None = None,
    ) -> None:
        if not isinstance(metric, str) or not metric.strip():
            raise ConfigError(f"The objective's metric must be a non-empty name, but got {metric!r}.")
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {list(MODES)}, but got {mode!r}.")
        object.__setattr__(self, "metric", metric)
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "constraints", tuple(parse_constraints(constraints)))
        object.__setattr__(self, "note", note)

    @classmethod
    def parse(cls, text: str, constraints: Sequence[Any] = ()) -> Objective:
        """``"METRIC:max"`` or ``"METRIC:min"`` (the command line's spelling)."""
        metric, sep, mode = str(text).rpartition(":")
        if not sep or not metric.strip() or mode.strip() not in MODES:
            raise ConfigError(
                f"Objective {text!r} is not of the form COLUMN:max or COLUMN:min "
                f"(e.g. --objective cifar10_valid_acc:max or --objective latency_ms:min)."
            )
        return cls(metric.strip(), mode.strip(), constraints)

    # --- the policy ---------------------------------------------------------------------------

    def value(self, metrics: Mapping[str, Any]) -> float | None:
        """The objective's value in ``metrics``, or None when it is missing."""
        return reported(metrics, self.metric)

    def better(self, a: float | None, b: float | None) -> bool:
        """Whether ``a`` is strictly better than ``b`` (None = missing, worse than any value)."""
        if a is None or not math.isfinite(a):
            return False
        if b is None or not math.isfinite(b):
            return True
        return a < b if self.mode == "min" else a > b

    def best(self, values: Iterable[float | None]) -> float | None:
        """The best of the values that are not missing, or None when all are."""
        found: float | None = None
        for value in values:
            if self.better(value, found):
                found = value
        return found

    def sort_key(self, value: float | None) -> float:
        """A key that sorts best first (missing last): ``sorted(values, key=objective.sort_key)``."""
        if value is None or not math.isfinite(value):
            return math.inf
        return value if self.mode == "min" else -value

    def feasible(self, metrics: Mapping[str, Any]) -> bool:
        """Whether every constraint was reported and met (a missing constrained metric is infeasible)."""
        return all(c.holds(metrics) is True for c in self.constraints)

    def constraint_states(self, metrics: Mapping[str, Any]) -> list[bool | None]:
        """Per constraint: met, violated, or None when its metric is missing (the raw observations
        that a model learns from; for the verdict use :meth:`feasible`)."""
        return [c.holds(metrics) for c in self.constraints]

    # --- words -----------------------------------------------------------------------------------

    @property
    def direction(self) -> str:
        return "lower" if self.mode == "min" else "higher"

    def describe(self) -> str:
        """The objective in a sentence (for people and for the LLM's prompt)."""
        text = f"{self.metric!r} ({self.direction} is better)"
        if self.note:
            text += f": {self.note}"
        if self.constraints:
            text += ". Constraints (a trial counts only if it meets all of them): " + ", ".join(
                map(str, self.constraints)
            )
        return text

    def with_constraints(self, constraints: Mapping[str, Any] | Iterable[Any] | None) -> Objective:
        return Objective(self.metric, self.mode, constraints, self.note)
