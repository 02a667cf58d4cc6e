"""Did the hybrid searcher's screen reject the right LLM candidates? Judged on a table, where the true value
of every candidate is known: the ones it served after screening against the ones it kept from running."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ray_diffnas.bench.stats import bootstrap_interval
from ray_diffnas.searchers.hybrid import LLM_PROPOSERS

if TYPE_CHECKING:
    from ray_diffnas.bench.harness import RunRecord


def screen_summary(
    runs: Sequence[RunRecord], true_value: Callable[[str], float | None], optimum: float | None
) -> dict[str, Any] | None:
    """The LLM candidates served after the warm-up (the screen kept them) and those it screened out, over
    ``runs``: how many, the share screened out, and each group's regret (distance of its true value from
    the table's ``optimum``) with a bootstrap 95 % interval of the mean. None for runs without a screen.
    With several objectives there is no one optimum (``optimum`` None): the counts alone.

    Example:
        >>> import pandas as pd
        >>> from ray_diffnas.bench.harness import RunRecord
        >>> trajectory = pd.DataFrame({"query": [1, 2, 3], "proposer": ["llm", "llm", "graph"],
        ...                            "arch_key": ["a", "b", "c"], "true_objective": [90.0, 80.0, 85.0]})
        >>> run = RunRecord("hybrid", 0, trajectory, 1.0, warmup=1, screened_out=[{"key": "d", "kind": "poor"}])
        >>> summary = screen_summary([run], {"d": 70.0}.get, optimum=91.0)
        >>> [summary[k] for k in ("served", "screened_out", "served_mean_regret", "screened_out_mean_regret")]
        [1, 1, 11.0, 21.0]
    """
    screened = [(item, run) for run in runs for item in run.screened_out]
    served: list[float] = []  # true values of the LLM candidates served after the warm-up
    for run in runs:
        frame = run.trajectory
        if "proposer" not in frame:  # a run cached before trajectories named the proposer
            continue
        after = frame[(frame["query"] > run.warmup) & frame["proposer"].isin(LLM_PROPOSERS)]
        served += [float(v) for v in after["true_objective"] if np.isfinite(v)]
    if not screened and not served:
        return None
    values = [true_value(item["key"]) for item, _ in screened]
    rejected = [float(v) for v in values if v is not None and np.isfinite(v)]
    kinds = [item.get("kind", "poor") for item, _ in screened]
    total = len(served) + len(screened)
    counts = {
        "served": len(served),
        "screened_out": len(screened),
        "screened_out_share": len(screened) / total if total else None,
        "screened_out_by": {kind: kinds.count(kind) for kind in sorted(set(kinds))},
        "screened_out_in_table": len(rejected),
    }
    if optimum is None:
        return counts
    served_regret = [abs(optimum - v) for v in served]
    rejected_regret = [abs(optimum - v) for v in rejected]
    return {
        **counts,
        "served_mean_regret": _mean(served_regret),
        "served_mean_regret_ci95": bootstrap_interval(np.array(served_regret), np.mean),
        "screened_out_mean_regret": _mean(rejected_regret),
        "screened_out_mean_regret_ci95": bootstrap_interval(np.array(rejected_regret), np.mean),
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None
