"""Feature extractors for RFID: clean-fid's Inception-v3, or a small classifier of the data set.

Inception-v3 pool features are what papers report, but the weights cannot be downloaded
offline and say little about 8x8 or 28x28 grey digits. There, the usual and more meaningful
choice is the penultimate layer of a small classifier trained on the data set itself; it is
trained once and cached. Every RFID names its extractor: numbers from two extractors are
not comparable.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ray_diffnas.data.datasets import ImageDataset
from ray_diffnas.errors import FeatureExtractorError
from ray_diffnas.metrics.cache import atomic_torch_save, cache_dir, file_lock
from ray_diffnas.metrics.catalog import FEATURE_CHOICES

logger = logging.getLogger(__name__)

INCEPTION_FILE = "inception-2015-12-05.pt"
INCEPTION_ENV = "RAY_DIFFNAS_INCEPTION_WEIGHTS"


class FeatureExtractor(Protocol):
    name: str  # Names the extractor in every result (``rfid_features``).

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """uint8 images (N, C, H, W) -> features (N, D) as float64."""


def inception_weights_path() -> Path | None:
    """The Inception weights file: ``$RAY_DIFFNAS_INCEPTION_WEIGHTS``, else clean-fid's ``/tmp`` copy."""
    from_env = os.environ.get(INCEPTION_ENV)
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise FeatureExtractorError(
                f"{INCEPTION_ENV}={from_env!r} is not a file; point it at clean-fid's {INCEPTION_FILE} or unset it."
            )
        return path
    default = Path(tempfile.gettempdir()) / INCEPTION_FILE
    return default if default.is_file() else None


def build_extractor(
    dataset: ImageDataset, features: str = "auto", device: torch.device | str = "cpu"
) -> FeatureExtractor:
    """Picks and builds the feature extractor for ``dataset``.

    ``auto`` takes Inception for colour images of 32 px or more when its weights are present,
    and the data set's classifier otherwise, saying so in the log.

    Raises:
        FeatureExtractorError: when the requested extractor cannot be built, naming the fix.
    """
    if features not in FEATURE_CHOICES:
        raise FeatureExtractorError(f"rfid_features must be one of {list(FEATURE_CHOICES)}, but got {features!r}.")
    device = torch.device(device)
    inception_fits = dataset.channels == 3 and dataset.image_size >= 32
    # Only where Inception may be used: a stale weights variable must not stop the classifier.
    weights = inception_weights_path() if features == "inception" or (features == "auto" and inception_fits) else None
    if features == "inception":
        if weights is None:
            raise FeatureExtractorError(
                f"rfid_features='inception' needs clean-fid's Inception weights, which are not on "
                f"this machine: put {INCEPTION_FILE} in {tempfile.gettempdir()} or set {INCEPTION_ENV} "
                f"to its path; or use rfid_features='classifier'."
            )
        return InceptionFeatures(weights, device)
    if features == "auto" and weights is not None and inception_fits:
        return InceptionFeatures(weights, device)
    if features == "auto" and inception_fits:
        # Inception would have been the choice here: say loudly that it is not.
        logger.warning(
            "No Inception weights (%s in %s, or $%s): RFID of %s uses a classifier trained on the data "
            "set instead; its numbers are not comparable with Inception FIDs.",
            INCEPTION_FILE,
            tempfile.gettempdir(),
            INCEPTION_ENV,
            dataset.name,
        )
    elif features == "auto":
        logger.info("RFID of %s uses a classifier trained on the data set (small or grey images).", dataset.name)
    return ClassifierFeatures.load_or_train(dataset, device)


class InceptionFeatures:
    """clean-fid's Inception-v3 (2048-d pool features), with clean-fid's own PIL resize to 299."""

    name = "inception_v3_clean"

    def __init__(self, weights: Path, device: torch.device) -> None:
        from cleanfid.inception_torchscript import InceptionV3W
        from cleanfid.resize import make_resizer

        self.device = device
        if weights.name == INCEPTION_FILE:
            self.model = InceptionV3W(str(weights.parent), download=False, resize_inside=False).to(device).eval()
        else:  # clean-fid wants its own file name in a folder: a link under that name, for the load only
            with tempfile.TemporaryDirectory(prefix="ray_diffnas_inception_") as folder:
                (Path(folder) / INCEPTION_FILE).symlink_to(weights.resolve())
                self.model = InceptionV3W(folder, download=False, resize_inside=False).to(device).eval()
        self.resize = make_resizer("PIL", False, "bicubic", (299, 299))

    def __call__(self, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
        from cleanfid.fid import get_batch_features

        feats = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            if chunk.shape[1] == 1:
                chunk = chunk.expand(-1, 3, -1, -1)
            resized = np.stack([self.resize(im) for im in chunk.permute(0, 2, 3, 1).numpy()])
            batch = torch.from_numpy(resized).permute(0, 3, 1, 2).float()
            feats.append(get_batch_features(batch, self.model, self.device))
        return np.concatenate(feats).astype(np.float64)


class SmallClassifier(nn.Module):
    """A 4-conv CNN whose 64-d penultimate layer serves as RFID features."""

    FEATURE_DIM = 64

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.GroupNorm(4, 32),
            nn.SiLU(),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.GroupNorm(4, 32),
            nn.SiLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.GroupNorm(8, 64),
            nn.SiLU(),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.GroupNorm(8, 64),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(256, self.FEATURE_DIM),
            nn.SiLU(),
        )
        self.head = nn.Linear(self.FEATURE_DIM, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class ClassifierFeatures:
    """Penultimate features of a :class:`SmallClassifier` trained once on the data set.

    Example:
        >>> from ray_diffnas.data.datasets import load_dataset
        >>> data = load_dataset("digits")
        >>> extractor = ClassifierFeatures.load_or_train(data)
        >>> extractor(data.images[:5]).shape
        (5, 64)
    """

    def __init__(self, model: SmallClassifier, dataset: ImageDataset, device: torch.device, accuracy: float) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.accuracy = accuracy
        self.name = f"classifier:{dataset.fingerprint()}"

    @classmethod
    def load_or_train(cls, dataset: ImageDataset, device: torch.device | str = "cpu") -> ClassifierFeatures:
        if dataset.labels is None:
            raise FeatureExtractorError(
                f"RFID needs a feature extractor for {dataset.name}, but it has no class labels to "
                f"train one and no Inception weights were found: put images in one sub-folder per "
                f"class, or put {INCEPTION_FILE} in {tempfile.gettempdir()} (or set {INCEPTION_ENV})."
            )
        path = cache_dir() / f"classifier-{dataset.fingerprint()}.pt"
        with file_lock(path):  # concurrent trials train it once
            if not path.exists():
                model, accuracy = train_classifier(dataset)
                atomic_torch_save({"state": model.state_dict(), "accuracy": accuracy}, path)
            saved = torch.load(path, map_location="cpu", weights_only=True)
        model = SmallClassifier(dataset.channels, dataset.num_classes)
        model.load_state_dict(saved["state"])
        return cls(model, dataset, torch.device(device), float(saved["accuracy"]))

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch_size: int = 500) -> np.ndarray:
        feats = []
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(self.device).float().div(127.5).sub(1.0)
            feats.append(self.model.body(x).double().cpu().numpy())
        return np.concatenate(feats)


def train_classifier(dataset: ImageDataset, epochs: int = 4, seed: int = 0) -> tuple[SmallClassifier, float]:
    """Trains the feature classifier on 90 % of the data; returns it and its held-out accuracy."""
    with torch.random.fork_rng(devices=[]):  # seeded weights without touching the caller's RNG
        torch.random.default_generator.manual_seed(seed)
        return _train_classifier(dataset, epochs, torch.Generator().manual_seed(seed))


def _train_classifier(dataset: ImageDataset, epochs: int, generator: torch.Generator) -> tuple[SmallClassifier, float]:
    order = torch.randperm(len(dataset.images), generator=generator)
    held_out, train = order[: len(order) // 10], order[len(order) // 10 :]
    labels = dataset.labels
    assert labels is not None  # load_or_train checked it
    model = SmallClassifier(dataset.channels, dataset.num_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    steps = epochs * max(1, len(train) // 128)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    for _ in range(steps):
        index = train[torch.randint(len(train), (128,), generator=generator)]
        loss = F.cross_entropy(model(dataset.batch(index)), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(dataset.batch(held_out)).argmax(1) == labels[held_out]).float().mean().item()
    logger.info("Trained the RFID feature classifier of %s: held-out accuracy %.3f", dataset.name, accuracy)
    return model, accuracy
