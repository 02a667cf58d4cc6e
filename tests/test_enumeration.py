"""A finite UNet space listed in full (what a complete table needs), its flat form, and the space specs."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from ray_diffnas.errors import ConfigError
from ray_diffnas.spaces.registry import space_from_spec
from ray_diffnas.spaces.unet_bench import bench_space
from ray_diffnas.spaces.unet_space import UNetSpace


@pytest.mark.parametrize("image_size,count", [(8, 320), (16, 1344)])
def test_the_bench_space_is_listed_once_each_and_completely(image_size: int, count: int) -> None:
    space = bench_space(image_size)
    archs = space.enumerate()
    keys = [arch.key() for arch in archs]
    assert len(archs) == count and len(set(keys)) == count and keys == sorted(keys)
    assert all(space.validate(arch.to_dict()) == arch for arch in archs)
    default = UNetSpace(image_size)  # so a table of it reads with --space unet:SIZE as well
    assert all(default.validate(arch.to_dict()) == arch for arch in archs)
    rng = np.random.default_rng(0)  # whatever the space's own sampler draws is listed
    assert {space.sample(rng).key() for _ in range(500)} <= set(keys)


def test_head_counts_that_do_not_fit_are_left_out_and_unused_heads_counted_once() -> None:
    space = UNetSpace(
        8,
        base_channels=(8,),
        channel_mults=(1,),
        num_levels=(2,),
        num_res_blocks=(1,),
        attention_max_resolution=4,
        num_heads=(1, 3),
        dropout=(0.0,),
        mid_attention=(False,),
    )
    keys = [arch.key() for arch in space.enumerate()]
    # 3 heads divide no 8-channel level; without attention the head count is not part of the network.
    assert keys == ["c8_m1-1_r1-1_a4_h1_d0_mid0", "c8_m1-1_r1-1_anone_h-_d0_mid0"]


def test_a_space_too_large_to_list_says_so() -> None:
    with pytest.raises(ConfigError, match="unet-bench"):
        UNetSpace(image_size=32).enumerate()


def test_the_flat_form_names_exactly_the_space() -> None:
    space = bench_space(8)
    choices = space.flat_choices()
    named = {space.from_flat(dict(zip(choices, values))).key() for values in itertools.product(*choices.values())}
    assert named == {arch.key() for arch in space.enumerate()}
    with pytest.raises(ConfigError, match="missing"):
        space.from_flat({"base_channels": 8})


def test_space_specs_and_space_files(tmp_path: Path) -> None:
    assert space_from_spec("unet-bench:8") == bench_space(8)
    path = tmp_path / "space.json"
    path.write_text(json.dumps(bench_space(16).to_dict()))
    assert space_from_spec(str(path)) == bench_space(16)
    bad = [("{", "not valid JSON"), ("[1]", "one JSON object")]
    bad.append(('{"kind": "unet", "x": 1}', "does not describe a space"))
    for text, words in bad:
        path.write_text(text)
        with pytest.raises(ConfigError, match=words):
            space_from_spec(str(path))
    with pytest.raises(ConfigError, match="check the path"):
        space_from_spec(str(tmp_path / "missing.json"))
