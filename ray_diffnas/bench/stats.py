"""The statistics a benchmark reports across seeds: a bootstrap interval, the one rule for spread."""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 2000


def bootstrap_interval(
    values: np.ndarray, statistic: Callable[..., np.ndarray] = np.mean, seed: int = 0
) -> tuple[float, float] | None:
    """The percentile bootstrap 95 % interval of ``statistic`` over seeds (NaNs dropped); None for
    fewer than two values.

    Example:
        >>> low, high = bootstrap_interval(np.array([1.0, 2.0, 3.0, 4.0]))
        >>> 1.0 <= low <= 2.5 <= high <= 4.0
        True
    """
    present = np.asarray(values, dtype=float)
    present = present[~np.isnan(present)]
    if len(present) < 2:
        return None
    if np.all(present == present[0]):  # no spread: every resample gives the same statistic
        value = float(statistic(present))
        return value, value
    result = stats.bootstrap(
        (present,),
        statistic,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
