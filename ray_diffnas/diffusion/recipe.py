"""The rapid-convergence training recipe: AdamW, LR warm-up + cosine, EMA with warm-up."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def lr_factor(step: int, warmup_steps: int, total_steps: int, final_factor: float = 0.1) -> float:
    """Learning-rate multiplier: linear warm-up to 1, then cosine decay to ``final_factor``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return final_factor + (1 - final_factor) * 0.5 * (1 + math.cos(math.pi * progress))


def ema_decay_at(step: int, decay: float) -> float:
    """EMA decay with warm-up, ``min(decay, (1 + k) / (10 + k))``: early averages forget fast."""
    return min(decay, (1 + step) / (10 + step))


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    # The fused kernel (CUDA, and CPU since torch 2.4) makes one pass over each parameter; foreach
    # makes a separate pass per arithmetic step of the update.
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(
        model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.99), fused=fused, foreach=not fused
    )


class EMA:
    """Exponential moving average of a model's weights; sample from ``ema.model``.

    Example:
        >>> net = nn.Linear(2, 2)
        >>> ema = EMA(net, decay=0.999)
        >>> ema.update(net, step=0)  # the first updates follow the model closely
        >>> torch.allclose(ema.model.weight, net.weight)
        True
        >>> ema_decay_at(0, 0.999), ema_decay_at(100_000, 0.999)
        (0.1, 0.999)
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """The decay of the update after ``step`` steps (warmed up)."""
        return ema_decay_at(step, self.decay)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        weight = 1.0 - self.decay_at(step)
        ema_params: list[torch.Tensor] = list(self.model.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], weight)
        for ema_buffer, buffer in zip(self.model.buffers(), model.buffers()):
            ema_buffer.copy_(buffer)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
