"""The cost a space bounds (counted from the record) is the cost a trial reports (counted by torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ray_diffnas import UNetSpace
from ray_diffnas.model.cost import count_flops
from ray_diffnas.model.unet import UNet
from ray_diffnas.spaces.unet_flops import unet_gflops


@pytest.mark.parametrize("image_size", [8, 16, 32])
def test_the_counted_flops_equal_torchs_flop_counter_on_random_architectures(image_size: int) -> None:
    space = UNetSpace(image_size=image_size, attention_max_resolution=image_size)  # attention at every size
    rng = np.random.default_rng(image_size)
    for _ in range(6):
        arch = space.sample(rng)
        for in_channels in (1, 3):
            with torch.device("meta"):  # the counter needs shapes only
                net = UNet(arch, image_size, in_channels)
            assert unet_gflops(arch, image_size, in_channels) == pytest.approx(
                count_flops(net, image_size, in_channels) / 1e9, rel=1e-12
            ), arch.key()


def test_the_counted_flops_equal_what_a_real_cpu_forward_counts() -> None:
    arch = UNetSpace(image_size=8).validate(
        {"base_channels": 16, "channel_mult": [1, 2], "num_res_blocks": [1, 2], "attention_resolutions": [8, 4]}
    )
    net = UNet(arch, 8, 1)
    assert unet_gflops(arch, 8) == pytest.approx(count_flops(net, 8, 1) / 1e9, rel=1e-12)
