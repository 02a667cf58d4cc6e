"""Cost figures of a denoiser: parameters, FLOPs and measured latency."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class ModelCost:
    """What one denoiser costs.

    Example:
        >>> from ray_diffnas.spaces.unet_arch import UNetArch
        >>> from ray_diffnas.model.unet import UNet
        >>> net = UNet(UNetArch(base_channels=8, channel_mult=(1, 1), num_res_blocks=(1, 1),
        ...                     attention_resolutions=()), image_size=8, in_channels=1)
        >>> cost = measure_cost(net, image_size=8, in_channels=1, repeats=3)
        >>> cost.params_m > 0 and cost.gflops > 0 and cost.latency_ms > 0
        True
    """

    params_m: float  # Trainable parameters, in millions.
    gflops: float  # FLOPs of one forward pass on one image, in 10^9 (a multiply-add counts 2).
    latency_ms: float  # Median wall time of one forward pass on one image, in milliseconds.


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, image_size: int, in_channels: int) -> int:
    """FLOPs of one forward pass of a batch of one, counted by ``torch.utils.flop_counter``."""
    device = next(model.parameters()).device
    x = torch.zeros(1, in_channels, image_size, image_size, device=device)
    t = torch.full((1,), 0.5, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, t)
    return counter.get_total_flops()


def measure_latency_ms(model: nn.Module, image_size: int, in_channels: int, repeats: int = 20) -> float:
    """Median wall time of one denoiser forward (batch 1, eval mode, no grad, after 3 warm-up
    calls) on the model's device, synchronising the GPU around each call."""
    device = next(model.parameters()).device
    x = torch.randn(1, in_channels, image_size, image_size, device=device)
    t = torch.full((1,), 0.5, device=device)
    was_training = model.training
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(repeats + 3):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            model(x, t)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= 3:
                times.append(time.perf_counter() - start)
    model.train(was_training)
    return 1000.0 * statistics.median(times)


def measure_cost(model: nn.Module, image_size: int, in_channels: int, repeats: int = 20) -> ModelCost:
    return ModelCost(
        params_m=count_params(model) / 1e6,
        gflops=count_flops(model, image_size, in_channels) / 1e9,
        latency_ms=measure_latency_ms(model, image_size, in_channels, repeats),
    )
