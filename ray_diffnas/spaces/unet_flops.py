"""What one denoiser forward costs, counted from the architecture record alone (no torch, no model).

A space with a cost bound (``UNetSpace(max_gflops=...)``) asks this for every architecture it
validates, thousands per graph-searcher proposal batch: building the network on torch's meta device
and counting its FLOPs takes ~50 ms an architecture, this takes microseconds. It walks the same
blocks as :class:`ray_diffnas.model.unet.UNet` and counts what ``torch.utils.flop_counter`` counts
(convolutions, linear layers, attention products; a multiply-add is 2 FLOPs), so that it equals the
``gflops`` a trial reports (``tests/test_unet_flops.py`` holds the two together over random
architectures).
"""

from __future__ import annotations

from ray_diffnas.spaces.unet_arch import UNetArch


def unet_gflops(arch: UNetArch, image_size: int, in_channels: int = 1) -> float:
    """FLOPs of one forward pass of the UNet on one image, in 10^9.

    Example:
        >>> arch = UNetArch(base_channels=16, channel_mult=(1, 2), num_res_blocks=(1, 1),
        ...                 attention_resolutions=(4,), num_heads=2)
        >>> round(unet_gflops(arch, image_size=8), 4)
        0.0082
    """
    base, channels, sizes = arch.base_channels, arch.channels(), arch.resolutions(image_size)
    emb = 4 * base
    flops = _linear(base, emb) + _linear(emb, emb)  # the time embedding
    flops += _conv(image_size, in_channels, base, 3)
    skips, ch = [base], base
    for level, (out, blocks) in enumerate(zip(channels, arch.num_res_blocks)):
        attention = sizes[level] in arch.attention_resolutions
        for _ in range(blocks):
            flops += _stage(sizes[level], ch, out, emb, attention, arch)
            ch = out
            skips.append(ch)
        if level < arch.num_levels - 1:
            flops += _conv(sizes[level + 1], ch, ch, 3)  # stride-2 downsampling
            skips.append(ch)
    bottom = sizes[-1]
    flops += _stage(bottom, ch, ch, emb, arch.mid_attention, arch) + _stage(bottom, ch, ch, emb, False, arch)
    for level in reversed(range(arch.num_levels)):
        attention = sizes[level] in arch.attention_resolutions
        for _ in range(arch.num_res_blocks[level] + 1):
            flops += _stage(sizes[level], ch + skips.pop(), channels[level], emb, attention, arch)
            ch = channels[level]
        if level > 0:
            flops += _conv(sizes[level - 1], ch, ch, 3)  # upsampling: nearest, then a 3x3 conv
    flops += _conv(image_size, ch, in_channels, 3)
    return flops / 1e9


def _stage(size: int, in_ch: int, out_ch: int, emb: int, attention: bool, arch: UNetArch) -> int:
    """A residual block (two 3x3 convs, the time projection, a 1x1 skip when widths differ), then
    self-attention (qkv and output 1x1 convs, the two attention products over size^2 positions)."""
    flops = _conv(size, in_ch, out_ch, 3) + _linear(emb, 2 * out_ch) + _conv(size, out_ch, out_ch, 3)
    if in_ch != out_ch:
        flops += _conv(size, in_ch, out_ch, 1)
    if attention:
        positions = size * size
        flops += _conv(size, out_ch, 3 * out_ch, 1) + _conv(size, out_ch, out_ch, 1) + 4 * positions**2 * out_ch
    return flops


def _conv(size: int, in_ch: int, out_ch: int, kernel: int) -> int:
    """A convolution whose output is ``size`` x ``size`` pixels (bias adds not counted, as torch does not)."""
    return 2 * size * size * in_ch * out_ch * kernel * kernel


def _linear(in_features: int, out_features: int) -> int:
    return 2 * in_features * out_features
