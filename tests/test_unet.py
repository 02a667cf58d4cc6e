"""The UNet built from a record, and its cost figures."""

from __future__ import annotations

import pytest
import torch

from ray_diffnas import UNet, UNetArch
from ray_diffnas.model.cost import count_flops, count_params, measure_cost


@pytest.mark.parametrize("levels", [2, 3, 4, 5])
def test_output_shape_matches_input_for_every_level_count(levels: int) -> None:
    arch = UNetArch(
        base_channels=8,
        channel_mult=(1, 2, 2, 2, 2)[:levels],
        num_res_blocks=(1, 2, 1, 2, 1)[:levels],
        attention_resolutions=(8,),
        num_heads=2,
        mid_attention=True,
    )
    net = UNet(arch, image_size=16, in_channels=3)
    x = torch.randn(2, 3, 16, 16)
    out = net(x, torch.rand(2))
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_untrained_output_is_zero_so_training_starts_from_a_neutral_denoiser() -> None:
    net = UNet(UNetArch(base_channels=8, channel_mult=(1, 2), num_res_blocks=(1, 1)), image_size=8, in_channels=1)
    assert torch.count_nonzero(net(torch.randn(2, 1, 8, 8), torch.rand(2))) == 0


def test_attention_layers_exist_exactly_at_the_requested_resolutions() -> None:
    arch = UNetArch(
        base_channels=8,
        channel_mult=(1, 1, 1),
        num_res_blocks=(1, 1, 1),
        attention_resolutions=(8,),
        mid_attention=False,
        num_heads=1,
    )
    net = UNet(arch, image_size=16, in_channels=1)
    seen = []
    for module in net.modules():
        if module.__class__.__name__ == "AttentionBlock":
            module.register_forward_hook(lambda m, inp, out: seen.append(out.shape[-1]))
    net(torch.randn(1, 1, 16, 16), torch.rand(1))
    assert seen and set(seen) == {8}


def test_cost_figures_grow_with_width() -> None:
    small = UNet(UNetArch(base_channels=8, channel_mult=(1, 2), num_res_blocks=(1, 1)), 16, 1)
    large = UNet(UNetArch(base_channels=32, channel_mult=(1, 2), num_res_blocks=(1, 1)), 16, 1)
    assert count_params(large) > 4 * count_params(small)
    assert count_flops(large, 16, 1) > 4 * count_flops(small, 16, 1)
    cost = measure_cost(small, 16, 1, repeats=3)
    assert cost.params_m == pytest.approx(count_params(small) / 1e6)
    assert cost.latency_ms > 0 and cost.gflops > 0
