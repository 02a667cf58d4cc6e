"""train_diffusion under real Ray Tune: reports, checkpoints, resume, divergence."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from ray import tune

from ray_diffnas import TrainingDivergedError, UNetArch, UNetSpace, load_dataset, train_diffusion
from ray_diffnas.diffusion.trainer import DiffusionTrainer
from ray_diffnas.trainable.settings import TrainingSettings
from ray_diffnas.trainable.trial import load_checkpoint, run_training

ARCH = {
    "base_channels": 8,
    "channel_mult": [1, 2],
    "num_res_blocks": [1, 1],
    "attention_resolutions": [4],
    "num_heads": 2,
    "dropout": 0.0,
    "mid_attention": False,
}
SMALL = {"steps_per_iteration": 10, "rfid_samples": 64, "sampler_steps": 2, "batch_size": 16}


def _config(**overrides) -> dict:
    return {"arch": ARCH, "dataset": "digits", "max_iterations": 2, **SMALL, **overrides}


@pytest.fixture(scope="module")
def tune_result(ray_session, tmp_path_factory):
    tuner = tune.Tuner(
        train_diffusion,
        param_space=_config(),
        tune_config=tune.TuneConfig(metric="rfid", mode="min", num_samples=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path_factory.mktemp("tune")), name="trainable"),
    )
    grid = tuner.fit()
    assert not grid.errors, grid.errors
    return grid[0]


@pytest.mark.slow
def test_reports_every_metric_once_per_iteration(tune_result) -> None:
    history = tune_result.metrics_dataframe
    assert list(history["training_iteration"]) == [1, 2]
    assert list(history["step"]) == [10, 20] and list(history["images_seen"]) == [160, 320]
    for name in ("rfid", "loss", "latency_ms", "params_m", "gflops"):
        assert all(math.isfinite(v) and v > 0 for v in history[name]), name
    assert tune_result.metrics["rfid_features"].startswith("classifier:digits")
    assert tune_result.metrics["arch_key"] == "c8_m1-2_r1-1_a4_h2_d0_mid0"


@pytest.mark.slow
def test_resumed_trainable_continues_its_step_count(tune_result) -> None:
    reports = []
    run_training(_config(max_iterations=4), tune_result.checkpoint, lambda metrics, checkpoint: reports.append(metrics))
    assert [r["step"] for r in reports] == [30, 40]
    assert [r["images_seen"] for r in reports] == [480, 640]


@pytest.mark.slow
def test_checkpoint_rebuilds_the_trained_model(tune_result) -> None:
    trainer = load_checkpoint(tune_result.checkpoint.path)
    assert trainer.step == 20 and trainer.arch.key() == "c8_m1-2_r1-1_a4_h2_d0_mid0"
    samples = trainer.sample(4, steps=2)
    assert samples.shape == (4, 1, 8, 8)


def test_checkpoint_folder_from_elsewhere_is_refused(tmp_path: Path) -> None:
    from ray_diffnas import ConfigError

    with pytest.raises(ConfigError, match="has no trial_config.json; it was not written by train_diffusion"):
        load_checkpoint(tmp_path)


def test_nan_loss_ends_the_trial_with_a_clear_error() -> None:
    with pytest.raises(TrainingDivergedError, match="loss became (nan|inf).*lower 'lr'"):
        run_training(
            _config(lr=1e12, warmup_steps=0, steps_per_iteration=60, max_iterations=1),
            None,
            lambda metrics, checkpoint: None,
        )


@pytest.mark.slow
def test_param_space_runs_a_random_search_with_asha(ray_session, tmp_path: Path) -> None:
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    space = UNetSpace(image_size=8, base_channels=(8,), channel_mults=(1, 2), num_res_blocks=(1,), num_levels=(2,))
    grid = tune.Tuner(
        train_diffusion,
        param_space=space.param_space(dataset="digits", max_iterations=2, **SMALL),
        tune_config=tune.TuneConfig(
            metric="rfid",
            mode="min",
            num_samples=3,
            search_alg=BasicVariantGenerator(random_state=0),
            scheduler=ASHAScheduler(max_t=2, grace_period=1, reduction_factor=2),
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="asha"),
    ).fit()
    assert not grid.errors
    iterations = sorted(r.metrics["training_iteration"] for r in grid)
    assert iterations[-1] == 2 and iterations[0] == 1  # ASHA stopped at least one trial at the first rung
    for result in grid:
        space.validate(result.config["arch"])


@pytest.mark.slow
def test_compiled_training_matches_eager_and_saves_plain_weights() -> None:
    """``torch_compile=True`` trains the same model (to float tolerance) and checkpoints it unwrapped."""
    data = load_dataset("digits")
    arch = UNetArch.from_dict({**ARCH, "attention_resolutions": []}, data.image_size)
    trainers = [
        DiffusionTrainer(
            arch,
            data,
            TrainingSettings(dataset="digits", batch_size=16, torch_compile=flag),
            device=torch.device("cpu"),
        )
        for flag in (False, True)
    ]
    eager, compiled = (trainer.train_steps(3) for trainer in trainers)
    assert compiled == pytest.approx(eager, rel=1e-3)
    eager_state, compiled_state = (trainer.state_dict()["model"] for trainer in trainers)
    assert list(compiled_state) == list(eager_state)  # no "_orig_mod." prefix: checkpoints load either way
    for name, value in eager_state.items():
        torch.testing.assert_close(compiled_state[name], value, rtol=1e-3, atol=1e-4)
