"""ray_diffnas: architecture search for the denoising UNets of image diffusion models, on Ray Tune.

Names are imported on first use (PEP 562), so that ``ray-diffnas --help`` and a mistyped flag
answer at once instead of after importing torch and Ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ray_diffnas.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "UNetArch": "spaces.unet_arch",
    "UNetSpace": "spaces.unet_space",
    "NB201Space": "spaces.nb201",
    "ImageDataset": "data.datasets",
    "load_dataset": "data.datasets",
    "ConfigError": "errors",
    "DataError": "errors",
    "DiffNASError": "errors",
    "FeatureExtractorError": "errors",
    "TrainingDivergedError": "errors",
    "GPT4Searcher": "searchers.llm.searcher",
    "GraphDiffusionSearcher": "searchers.graph.searcher",
    "HybridSearcher": "searchers.hybrid",
    "GraphDiffusion": "searchers.graph.diffusion",
    "Constraint": "searchers.objective",
    "Objective": "searchers.objective",
    "TableBenchmark": "bench.harness",
    "SearchMemory": "searchers.memory",
    "RFID": "metrics.rfid",
    "MemorySearcher": "searchers.base",
    "Proposal": "searchers.base",
    "make_searcher": "searchers.factory",
    "TrainingSettings": "trainable.settings",
    "load_checkpoint": "trainable.trial",
    "train_diffusion": "trainable.trial",
    "UNet": "model.unet",
    "atomic_local_filesystem": "app.storage",
    "RegularizedEvolution": "searchers.evolution",
    "bench_space": "spaces.unet_bench",
    "build_table": "bench.build",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # for type checkers and IDEs
    from ray_diffnas.app.storage import atomic_local_filesystem
    from ray_diffnas.bench.build import build_table
    from ray_diffnas.bench.harness import TableBenchmark
    from ray_diffnas.data.datasets import ImageDataset, load_dataset
    from ray_diffnas.errors import ConfigError, DataError, DiffNASError, FeatureExtractorError, TrainingDivergedError
    from ray_diffnas.metrics.rfid import RFID
    from ray_diffnas.model.unet import UNet
    from ray_diffnas.searchers.base import MemorySearcher, Proposal
    from ray_diffnas.searchers.evolution import RegularizedEvolution
    from ray_diffnas.searchers.factory import make_searcher
    from ray_diffnas.searchers.graph.diffusion import GraphDiffusion
    from ray_diffnas.searchers.graph.searcher import GraphDiffusionSearcher
    from ray_diffnas.searchers.hybrid import HybridSearcher
    from ray_diffnas.searchers.llm.searcher import GPT4Searcher
    from ray_diffnas.searchers.memory import SearchMemory
    from ray_diffnas.searchers.objective import Constraint, Objective
    from ray_diffnas.spaces.nb201 import NB201Space
    from ray_diffnas.spaces.unet_arch import UNetArch
    from ray_diffnas.spaces.unet_bench import bench_space
    from ray_diffnas.spaces.unet_space import UNetSpace
    from ray_diffnas.trainable.settings import TrainingSettings
    from ray_diffnas.trainable.trial import load_checkpoint, train_diffusion
