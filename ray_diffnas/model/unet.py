"""The UNet denoiser built from a :class:`UNetArch` (after DDPM / improved-diffusion)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ray_diffnas.model.embedding import sinusoidal_embedding
from ray_diffnas.spaces.unet_arch import UNetArch


def group_norm(channels: int) -> nn.GroupNorm:
    # At most 8 groups, at least 4 channels per group: works for every multiple of 8.
    return nn.GroupNorm(min(8, channels // 4), channels)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of continuous times ``t`` in [0, 1] (scaled to [0, 1000])."""
    return sinusoidal_embedding(t, dim, max_period, scale=1000.0)


def _zero(layer: nn.Module) -> None:
    """Zeroes a layer's weight and bias (a residual branch that starts as nothing)."""
    for name in ("weight", "bias"):
        tensor = getattr(layer, name, None)
        if isinstance(tensor, torch.Tensor):
            nn.init.zeros_(tensor)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a scale-shift time conditioning (improved-diffusion)."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        _zero(self.conv2)  # each block starts as the identity
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over all positions of a feature map."""

    def __init__(self, channels: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        _zero(self.proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.num_heads, c // self.num_heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Stage(nn.Module):
    """A residual block, optionally followed by self-attention."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, arch: UNetArch, attention: bool) -> None:
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, emb_dim, arch.dropout)
        self.attn = AttentionBlock(out_ch, arch.num_heads) if attention else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        x = self.res(x, emb)
        return self.attn(x) if self.attn is not None else x


class UNet(nn.Module):
    """Denoiser ``f(x_t, t) -> prediction`` with the architecture ``arch``.

    Example:
        >>> arch = UNetArch(base_channels=16, channel_mult=(1, 2), num_res_blocks=(1, 1),
        ...                 attention_resolutions=(4,), num_heads=2)
        >>> net = UNet(arch, image_size=8, in_channels=1)
        >>> net(torch.zeros(3, 1, 8, 8), torch.rand(3)).shape
        torch.Size([3, 1, 8, 8])
    """

    def __init__(self, arch: UNetArch, image_size: int, in_channels: int) -> None:
        super().__init__()
        arch = UNetArch.from_dict(arch.to_dict(), image_size)  # validates against image_size
        self.arch, self.image_size, self.in_channels = arch, image_size, in_channels
        base, channels, sizes = arch.base_channels, arch.channels(), arch.resolutions(image_size)
        emb_dim = 4 * base
        self.time_embed = nn.Sequential(nn.Linear(base, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.input_conv = nn.Conv2d(in_channels, base, 3, padding=1)

        self.down = nn.ModuleList()
        skip_channels, ch = [base], base
        for level, (out_ch, blocks) in enumerate(zip(channels, arch.num_res_blocks)):
            attention = sizes[level] in arch.attention_resolutions
            for _ in range(blocks):
                self.down.append(Stage(ch, out_ch, emb_dim, arch, attention))
                ch = out_ch
                skip_channels.append(ch)
            if level < arch.num_levels - 1:
                self.down.append(Downsample(ch))
                skip_channels.append(ch)

        self.mid = nn.ModuleList(
            [
                Stage(ch, ch, emb_dim, arch, attention=arch.mid_attention),
                Stage(ch, ch, emb_dim, arch, attention=False),
            ]
        )

        self.up = nn.ModuleList()
        for level in reversed(range(arch.num_levels)):
            attention = sizes[level] in arch.attention_resolutions
            for _ in range(arch.num_res_blocks[level] + 1):
                self.up.append(Stage(ch + skip_channels.pop(), channels[level], emb_dim, arch, attention))
                ch = channels[level]
            if level > 0:
                self.up.append(Upsample(ch))

        self.out = nn.Sequential(group_norm(ch), nn.SiLU(), nn.Conv2d(ch, in_channels, 3, padding=1))
        _zero(self.out[-1])

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Args:
        x: Noisy images, shape (B, C, H, W).
        t: Diffusion times in [0, 1], shape (B,).
        """
        emb = self.time_embed(timestep_embedding(t, self.arch.base_channels))
        h = self.input_conv(x)
        skips = [h]
        for module in self.down:
            h = module(h, emb) if isinstance(module, Stage) else module(h)
            skips.append(h)
        for stage in self.mid:
            h = stage(h, emb)
        for module in self.up:
            if isinstance(module, Stage):
                h = module(torch.cat([h, skips.pop()], dim=1), emb)
            else:
                h = module(h)
        return self.out(h)
