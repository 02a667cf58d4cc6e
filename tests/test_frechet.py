"""The Fréchet distance RFID uses: clean-fid's formula, also where clean-fid's own call fails."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from cleanfid import fid as clean_fid

from ray_diffnas.metrics.frechet import frechet_distance


def _stats(rng: np.random.Generator, samples: int, dims: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    feats = rng.normal(size=(samples, dims)) @ rng.normal(size=(dims, dims)) + shift
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _clean_fid_or_none(*stats: np.ndarray) -> float | None:
    """clean-fid's value, or None on a SciPy without ``sqrtm(disp=...)`` (the reason frechet.py exists)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # SciPy 1.17 deprecates disp
            return float(clean_fid.frechet_distance(*stats))
    except TypeError as error:
        assert "disp" in str(error)
        return None


def test_gaussians_with_diagonal_covariances_have_the_closed_form() -> None:
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    expected = 5.0 + float(np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2)))
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected)


@pytest.mark.parametrize("samples", [400, 12], ids=["full-rank", "singular"])  # 12 < 16 dims: clean-fid's eps path
def test_same_value_as_clean_fid(samples: int) -> None:
    rng = np.random.default_rng(0)
    stats = (*_stats(rng, samples, 16, 0.0), *_stats(rng, 400, 16, 0.5))
    ours = frechet_distance(*stats)
    assert np.isfinite(ours) and ours > 0
    expected = _clean_fid_or_none(*stats)
    if expected is not None:
        assert ours == pytest.approx(expected, rel=1e-6)


def test_features_of_different_extractors_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="same feature extractor"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
