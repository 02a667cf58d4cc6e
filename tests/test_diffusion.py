"""Noise schedule, loss, sampler and training recipe, each on 8x8 images."""

from __future__ import annotations

import math

import pytest
import torch

from ray_diffnas import TrainingSettings, UNetArch
from ray_diffnas.diffusion.recipe import EMA, ema_decay_at, lr_factor
from ray_diffnas.diffusion.schedule import (
    add_noise,
    alpha_sigma,
    ddim_sample,
    diffusion_loss,
    min_snr_weight,
    snr,
    v_target,
)
from ray_diffnas.diffusion.trainer import DiffusionTrainer


def test_cosine_schedule_preserves_variance_and_runs_from_data_to_noise() -> None:
    t = torch.linspace(0, 1, 101)
    alpha, sigma = alpha_sigma(t)
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(t))
    assert alpha[0] == 1 and sigma[0] == 0 and alpha[-1] < 1e-6
    assert torch.all(snr(t[1:])[1:] < snr(t[1:])[:-1])  # SNR falls monotonically


def test_min_snr_weight_caps_high_snr_steps() -> None:
    s = torch.tensor([0.1, 1.0, 5.0, 100.0])
    w = min_snr_weight(s, gamma=5.0)
    torch.testing.assert_close(w, torch.tensor([0.1 / 1.1, 1 / 2, 5 / 6, 5 / 101]))


def test_v_target_recovers_clean_image_and_noise() -> None:
    x0, noise, t = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8), torch.rand(4)
    xt, v = add_noise(x0, t, noise), v_target(x0, t, noise)
    alpha, sigma = (a.view(-1, 1, 1, 1) for a in alpha_sigma(t))
    torch.testing.assert_close(alpha * xt - sigma * v, x0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sigma * xt + alpha * v, noise, atol=1e-5, rtol=1e-5)


def test_perfect_denoiser_has_zero_loss_and_ddim_reproduces_its_target() -> None:
    target = torch.full((1, 1, 8, 8), 0.5)

    def oracle(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # The v that maps any x_t to the fixed clean image `target`.
        alpha, sigma = (a.view(-1, 1, 1, 1) for a in alpha_sigma(t))
        noise = (xt - alpha * target) / sigma
        return alpha * noise - sigma * target

    assert diffusion_loss(oracle, target.expand(6, -1, -1, -1), gamma=5.0) < 1e-6
    out = ddim_sample(oracle, (3, 1, 8, 8), steps=4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, target.expand(3, -1, -1, -1), atol=1e-4, rtol=1e-4)


def test_sampler_output_is_in_range_and_deterministic_for_a_seed() -> None:
    def wild(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 50 * torch.randn_like(xt)

    out = ddim_sample(wild, (5, 1, 8, 8), steps=3, generator=torch.Generator().manual_seed(1))
    assert out.shape == (5, 1, 8, 8) and out.min() >= -1 and out.max() <= 1

    def gentle(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.1 * xt

    a = ddim_sample(gentle, (2, 1, 8, 8), steps=5, generator=torch.Generator().manual_seed(3))
    b = ddim_sample(gentle, (2, 1, 8, 8), steps=5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        ddim_sample(gentle, (1, 1, 8, 8), steps=0)


def test_learning_rate_warms_up_then_decays_by_cosine() -> None:
    factors = [lr_factor(step, warmup_steps=10, total_steps=110) for step in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)


def test_ema_warms_up_and_tracks_the_average() -> None:
    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)
    assert ema_decay_at(10**6, 0.999) == 0.999
    net = torch.nn.Linear(1, 1, bias=False)
    ema = EMA(net, decay=0.5)
    for step in range(200):
        net.weight.data.fill_(float(step % 2))  # alternates 0, 1
        ema.update(net, step=step)
    assert 0.2 < ema.model.weight.item() < 0.8  # averages, does not copy


@pytest.mark.slow
def test_training_loss_falls_on_digits(digits) -> None:
    arch = UNetArch(
        base_channels=16, channel_mult=(1, 2), num_res_blocks=(1, 1), attention_resolutions=(4,), num_heads=2
    )
    settings = TrainingSettings(
        dataset="digits", batch_size=64, lr=3e-3, warmup_steps=10, steps_per_iteration=150, max_iterations=1
    )
    trainer = DiffusionTrainer(arch, digits, settings, torch.device("cpu"))

    def held_out_loss() -> float:
        x0 = digits.batch(torch.arange(256))
        return diffusion_loss(trainer.model, x0, 5.0, torch.Generator().manual_seed(0)).item()

    before = held_out_loss()
    trainer.train_steps(150)
    after = held_out_loss()
    assert math.isfinite(after) and after < 0.6 * before
    assert trainer.step == 150 and trainer.images_seen == 150 * 64
