"""Constraints on reported metrics, e.g. ``latency_ms<=5``: parsed once, checked on results."""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ray_diffnas.errors import ConfigError

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
        """True / False when the metric was reported, None when it is missing or not a number."""
        value = metrics.get(self.metric)
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or math.isnan(float(value)):
            return None
        value = float(value)
        return {"<=": value <= self.bound, ">=": value >= self.bound,
                "<": value < self.bound, ">": value > self.bound}[self.op]

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
            raise ConfigError(f"Constraints {constraints!r} are not valid JSON ({error}); "
                              f"write e.g. '{{\"latency_ms\": 5.0}}' or 'latency_ms<=5'.") from None
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
