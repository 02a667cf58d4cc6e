"""Library code leaves no global state behind: torch's global RNG, its thread count, matplotlib's backend."""

from __future__ import annotations

import pandas as pd
import torch

from ray_diffnas.diffusion.trainer import DiffusionTrainer
from ray_diffnas.metrics.features import train_classifier
from ray_diffnas.searchers.graph.searcher import GraphDiffusionSearcher
from ray_diffnas.spaces.nb201 import NB201Space
from ray_diffnas.spaces.unet_arch import UNetArch
from ray_diffnas.trainable.settings import TrainingSettings

ARCH = UNetArch(base_channels=8, channel_mult=(1, 2), num_res_blocks=(1, 1), attention_resolutions=(), dropout=0.1)


def test_a_trainer_keeps_its_own_rng_stream_and_leaves_the_callers_alone(digits) -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    trainer = DiffusionTrainer(ARCH, digits, TrainingSettings(dataset="digits", batch_size=8), torch.device("cpu"))
    trainer.train_steps(2)
    trainer.sample(4, steps=2)
    assert torch.equal(torch.get_rng_state(), before)
    # ... and its run does not depend on the caller's RNG: same seed, same weights and losses.
    torch.manual_seed(999)
    again = DiffusionTrainer(ARCH, digits, TrainingSettings(dataset="digits", batch_size=8), torch.device("cpu"))
    again.train_steps(2)
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[name], value), name


def test_the_feature_classifier_trains_without_touching_the_global_rng(digits) -> None:
    before = torch.get_rng_state()
    train_classifier(digits, epochs=1)
    assert torch.equal(torch.get_rng_state(), before)


def test_the_graph_searcher_restores_torchs_thread_count_and_rng() -> None:
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    searcher = GraphDiffusionSearcher(space=NB201Space(), metric="acc", mode="max", warmup=2, train_steps=5, seed=0)
    for i in range(4):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"acc": float(i)})
        assert config is not None
    assert searcher.model is not None  # it trained and sampled
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)


def test_plots_leave_matplotlibs_backend_alone(tmp_path) -> None:
    import matplotlib

    before = matplotlib.rcParams._get_backend_or_none()  # None until someone picks one
    from ray_diffnas.app.plots import plot_search, save_image_grid

    frame = pd.DataFrame(
        {
            "trial_id": ["a", "b"],
            "best_rfid": [3.0, 2.0],
            "latency_ms": [1.0, 2.0],
            "status": ["completed", "stopped"],
            "started": [2.0, 1.0],
        }
    )
    plot_search(frame, tmp_path / "search.png")
    save_image_grid(torch.zeros(4, 1, 8, 8), tmp_path / "grid.png")
    assert (tmp_path / "search.png").stat().st_size > 0 and (tmp_path / "grid.png").stat().st_size > 0
    assert matplotlib.rcParams._get_backend_or_none() == before
