"""The diffusion process: noise schedule, training loss and a few-step sampler.

Continuous time ``t`` in [0, 1]; ``x_t = alpha(t) x_0 + sigma(t) eps`` with the cosine schedule
(Nichol & Dhariwal, 2021). The denoiser predicts ``v = alpha eps - sigma x_0`` (Salimans & Ho,
2022), which stays well-posed at both ends of the schedule.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Keep training times away from t = 0, where SNR is infinite.
T_MIN = 1e-4


def alpha_sigma(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine schedule: ``alpha = cos(pi t / 2)``, ``sigma = sin(pi t / 2)`` (so alpha^2 + sigma^2 = 1)."""
    angle = 0.5 * math.pi * t
    return torch.cos(angle), torch.sin(angle)


def snr(t: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio ``alpha^2 / sigma^2``."""
    alpha, sigma = alpha_sigma(t)
    return alpha**2 / sigma.clamp_min(1e-12) ** 2


def min_snr_weight(snr_t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma weight for v-prediction, ``min(SNR, gamma) / (SNR + 1)`` (Hang et al., ICCV 2023)."""
    return snr_t.clamp(max=gamma) / (snr_t + 1)


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def add_noise(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Samples ``x_t ~ q(x_t | x_0)`` given the noise."""
    alpha, sigma = alpha_sigma(t)
    return _expand(alpha, x0) * x0 + _expand(sigma, x0) * noise


def v_target(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    alpha, sigma = alpha_sigma(t)
    return _expand(alpha, x0) * noise - _expand(sigma, x0) * x0


def diffusion_loss(
    model: Denoiser, x0: torch.Tensor, gamma: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Min-SNR-gamma weighted v-prediction loss on a batch of clean images in [-1, 1]."""
    t = torch.rand(x0.shape[0], device=x0.device, generator=generator).clamp(min=T_MIN)
    noise = torch.randn(x0.shape, device=x0.device, generator=generator, dtype=x0.dtype)
    prediction = model(add_noise(x0, t, noise), t)
    per_image = (prediction.float() - v_target(x0, t, noise)).pow(2).flatten(1).mean(1)
    return (min_snr_weight(snr(t), gamma) * per_image).mean()


@torch.no_grad()
def ddim_sample(
    model: Denoiser,
    shape: tuple[int, ...],
    steps: int,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Deterministic DDIM (eta = 0; Song et al., ICLR 2021) from pure noise; returns images in [-1, 1]."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, but got {steps}.")
    x = torch.randn(shape, device=device, generator=generator)
    times = torch.linspace(1.0, 0.0, steps + 1, device=device)
    for t_now, t_next in zip(times[:-1], times[1:]):
        t = torch.full((shape[0],), float(t_now), device=device)
        alpha, sigma = alpha_sigma(t_now)
        v = model(x, t).float()
        x0 = (alpha * x - sigma * v).clamp(-1.0, 1.0)
        eps = (x - alpha * x0) / sigma
        alpha_next, sigma_next = alpha_sigma(t_next)
        x = alpha_next * x0 + sigma_next * eps
    return x.clamp(-1.0, 1.0)
