"""The Fréchet distance between two Gaussians: clean-fid's formula, on every SciPy we support.

clean-fid 0.1.35 (its latest release) calls ``scipy.linalg.sqrtm(..., disp=False)``; SciPy
deprecated ``disp`` (1.17 warns) and 1.18 removed it, so there clean-fid's ``frechet_distance`` raises
``TypeError`` on every call. This is the same computation (same regularisation of a singular
product, same tolerance on the imaginary part) with the ``sqrtm`` call every SciPy release takes;
``tests/test_frechet.py`` checks it against clean-fid's wherever that still runs.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

SINGULAR_EPS = 1e-6  # clean-fid's ``eps``: added to both covariances' diagonals when their product is singular
IMAGINARY_ATOL = 1e-3  # clean-fid's tolerance on the imaginary part of the square root's diagonal


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)), as clean-fid computes it.

    Example:
        >>> import numpy as np
        >>> eye = np.eye(3)
        >>> round(frechet_distance(np.zeros(3), eye, np.ones(3), eye), 6)
        3.0
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"the two feature sets differ in size: means {mu1.shape} and {mu2.shape}, "
            f"covariances {sigma1.shape} and {sigma2.shape}; compute both with the same feature extractor"
        )
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * SINGULAR_EPS
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAGINARY_ATOL):
            imaginary = np.max(np.abs(covmean.imag))
            raise ValueError(f"the covariances' product has a square root with imaginary part {imaginary}")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))
