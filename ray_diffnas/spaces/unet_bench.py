"""The UNet space of the shipped tabular benchmarks: a handful of values per field.

Small enough to train every architecture in it (complete tables), varied where a denoiser's
quality and cost move most at these budgets: width (``base_channels``), depth (levels), where
the width grows (``channel_mult``), residual blocks per level, and bottleneck attention.
Attention at the larger feature maps, head counts and dropout are fixed (one head, no dropout)
to keep the table small enough to train in full on a CPU.

Sizes: 320 architectures at 8 px (2 or 3 levels), 1,344 at 16 px (2 to 4 levels).
"""

from __future__ import annotations

from ray_diffnas.spaces.unet_space import UNetSpace

BENCH_SPACE_KIND = "unet-bench"


def bench_space(image_size: int) -> UNetSpace:
    """The benchmark space for ``image_size`` pixels (every level down to 2 px).

    Example:
        >>> len(bench_space(8).enumerate())
        320
    """
    return UNetSpace(
        image_size,
        base_channels=(8, 16, 24, 32),
        channel_mults=(1, 2),
        num_res_blocks=(1, 2),
        attention_max_resolution=0,
        num_heads=(1,),
        dropout=(0.0,),
        mid_attention=(False, True),
        min_resolution=2,
    )
