"""RFID: a rapid FID between a few generated images and the data set's cached statistics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ray_diffnas.data.datasets import ImageDataset
from ray_diffnas.metrics.cache import atomic_torch_save, cache_dir, file_lock
from ray_diffnas.metrics.catalog import ResolvedFeatureChoice
from ray_diffnas.metrics.features import FeatureExtractor, InceptionFeatures, build_extractor
from ray_diffnas.metrics.frechet import frechet_distance


@dataclass(frozen=True)
class FeatureStats:
    """Mean and covariance of features: all FID needs of a set of images."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int

    @classmethod
    def of(cls, feats: np.ndarray) -> FeatureStats:
        return cls(np.mean(feats, axis=0), np.cov(feats, rowvar=False), len(feats))


def reference_stats(dataset: ImageDataset, extractor: FeatureExtractor) -> FeatureStats:
    """Feature statistics of every image of the data set, cached per (data set, extractor)."""
    safe_name = extractor.name.replace(":", "-").replace("/", "-")
    path = cache_dir() / f"stats-{dataset.fingerprint()}-{safe_name}.pt"
    with file_lock(path):
        if not path.exists():
            stats = FeatureStats.of(extractor(dataset.images))
            atomic_torch_save(
                {"mu": torch.from_numpy(stats.mu), "sigma": torch.from_numpy(stats.sigma), "count": stats.count}, path
            )
        saved = torch.load(path, map_location="cpu", weights_only=True)
    return FeatureStats(saved["mu"].numpy(), saved["sigma"].numpy(), int(saved["count"]))


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 pixels, quantised as a saved image would be."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


class RFID:
    """Scores generated images by FID against the data set, with clean-fid's Fréchet distance.

    Example:
        >>> from ray_diffnas.data.datasets import load_dataset
        >>> data = load_dataset("digits")
        >>> rfid = RFID(data)
        >>> rfid.features.startswith("classifier:digits"), rfid.choice
        (True, 'classifier')
        >>> rfid(data.batch(torch.arange(1000))) < 1.0  # real images score near zero
        True
    """

    def __init__(self, dataset: ImageDataset, features: str = "auto", device: torch.device | str = "cpu") -> None:
        self.extractor = build_extractor(dataset, features, device)
        self.reference = reference_stats(dataset, self.extractor)

    @property
    def features(self) -> str:
        """The extractor's name; report it beside every RFID (``rfid_features``)."""
        return self.extractor.name

    @property
    def choice(self) -> ResolvedFeatureChoice:
        """The ``rfid_features`` choice that builds this extractor on any machine (``auto`` resolved):
        what a search hands its trials, so that every node scores with the same features."""
        return "inception" if isinstance(self.extractor, InceptionFeatures) else "classifier"

    def __call__(self, images: torch.Tensor) -> float:
        """RFID of images given as floats in [-1, 1] or as uint8, shape (N, C, H, W)."""
        pixels = images if images.dtype == torch.uint8 else to_uint8(images)
        return self.of_features(self.extractor(pixels))

    def of_features(self, feats: np.ndarray) -> float:
        """RFID of images already through ``self.extractor`` (score several subsets, extract once)."""
        generated, ref = FeatureStats.of(feats), self.reference
        return frechet_distance(generated.mu, generated.sigma, ref.mu, ref.sigma)
