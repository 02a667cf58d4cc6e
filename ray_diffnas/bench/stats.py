"""The statistics a benchmark reports across seeds: a bootstrap interval, the one rule for spread."""

from __future__ import annotations

from typing import Any, Callable, Sequence

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
    return _percentile_bootstrap((present,), statistic, seed)


def seed_bootstrap_mean(groups: Sequence[np.ndarray], seed: int = 0) -> tuple[float, float] | None:
    """The percentile bootstrap 95 % interval of the mean of values pooled over seeds, resampling whole
    seeds (one group per seed): the values of one run are not independent of each other, so the seed is
    the unit that is resampled. None for fewer than two seeds with values.

    Example:
        >>> low, high = seed_bootstrap_mean([np.array([1.0, 1.0]), np.array([3.0]), np.array([2.0, 2.0])])
        >>> 1.0 <= low <= 1.8 <= high <= 3.0
        True
    """
    present = [np.asarray(g, dtype=float)[~np.isnan(np.asarray(g, dtype=float))] for g in groups]
    present = [g for g in present if len(g)]
    if len(present) < 2:
        return None
    sums, counts = np.array([g.sum() for g in present]), np.array([len(g) for g in present])
    picks = np.random.default_rng(seed).integers(0, len(present), size=(RESAMPLES, len(present)))
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    low, high = np.percentile(means, [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)])
    return float(low), float(high)


def difference_interval(values: np.ndarray, reference: np.ndarray, seed: int = 0) -> tuple[float, float] | None:
    """The percentile bootstrap 95 % interval of ``mean(values) - mean(reference)``, two independent
    groups of seeds each resampled on its own (NaNs dropped); None when either has fewer than two values.
    An interval that excludes 0 says the two means differ at this confidence.

    Example:
        >>> low, high = difference_interval(np.array([1.0, 1.2, 0.9, 1.1]), np.array([2.0, 2.2, 1.9, 2.1]))
        >>> -1.2 <= low <= -1.0 <= high <= -0.8
        True
    """
    a, b = (np.asarray(v, dtype=float) for v in (values, reference))
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2:
        return None
    if np.all(a == a[0]) and np.all(b == b[0]):  # no spread in either: every resample gives the same difference
        return float(a[0] - b[0]), float(a[0] - b[0])
    return _percentile_bootstrap((a, b), lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis), seed)


def _percentile_bootstrap(
    samples: tuple[np.ndarray, ...], statistic: Callable[..., Any], seed: int
) -> tuple[float, float]:
    """scipy's percentile bootstrap at this module's confidence and resamples; each sample resampled on its own."""
    result = stats.bootstrap(
        samples,
        statistic,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
