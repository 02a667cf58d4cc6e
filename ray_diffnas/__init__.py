"""ray_diffnas: architecture search for the denoising UNets of image diffusion models, on Ray Tune."""

from __future__ import annotations

from ray_diffnas.arch import UNetArch
from ray_diffnas.data import ImageDataset, load_dataset
from ray_diffnas.errors import ConfigError, DataError, DiffNASError, FeatureExtractorError, TrainingDivergedError
from ray_diffnas.gpt4_searcher import GPT4Searcher
from ray_diffnas.memory import SearchMemory
from ray_diffnas.rfid import RFID
from ray_diffnas.searcher_base import MemorySearcher, Proposal
from ray_diffnas.settings import TrainingSettings
from ray_diffnas.space import UNetSpace
from ray_diffnas.trainable import load_checkpoint, train_diffusion
from ray_diffnas.unet import UNet

__version__ = "0.1.0"

__all__ = [
    "RFID", "ConfigError", "DataError", "DiffNASError", "FeatureExtractorError", "GPT4Searcher", "ImageDataset",
    "MemorySearcher", "Proposal", "SearchMemory", "TrainingDivergedError", "TrainingSettings", "UNet", "UNetArch",
    "UNetSpace", "load_checkpoint", "load_dataset", "train_diffusion",
]
