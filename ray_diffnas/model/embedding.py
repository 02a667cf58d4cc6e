"""The sinusoidal embedding of a time in [0, 1], shared by the UNet and the graph transformer."""

from __future__ import annotations

import math

import torch


def sinusoidal_embedding(
    t: torch.Tensor, dim: int, max_period: float = 10_000.0, scale: float = 1000.0
) -> torch.Tensor:
    """``dim`` features of each time ``t`` (shape ``[B]``): cosines then sines of ``scale * t``
    at ``dim // 2`` frequencies spaced geometrically from 1 down to ``1 / max_period``.

    Example:
        >>> sinusoidal_embedding(torch.tensor([0.0, 0.5]), 4).shape
        torch.Size([2, 4])
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = scale * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
