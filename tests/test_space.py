"""UNetSpace and UNetArch: validation, canonical keys, sampling, Tune param space, schema."""

from __future__ import annotations

import dataclasses

import jsonschema
import numpy as np
import pytest
from ray import tune

from ray_diffnas import ConfigError, UNetArch, UNetSpace
from ray_diffnas.spaces.unet_flops import unet_gflops


def test_from_dict_normalizes_to_one_canonical_record() -> None:
    a = UNetArch.from_dict(
        {"base_channels": 16, "channel_mult": [1, 2, 2], "num_res_blocks": 2, "attention_resolutions": [4, 8, 8]},
        image_size=16,
    )
    b = UNetArch.from_dict(
        {"base_channels": 16, "channel_mult": (1, 2, 2), "num_res_blocks": [2, 2, 2], "attention_resolutions": (8, 4)},
        image_size=16,
    )
    assert a == b
    assert a.key() == b.key() == "c16_m1-2-2_r2-2-2_a8-4_h4_d0_mid1"
    assert UNetArch.from_dict(a.to_dict(), 16) == a


def test_keys_differ_exactly_when_the_networks_differ() -> None:
    space = UNetSpace(image_size=16)
    rng = np.random.default_rng(0)
    by_key: dict[str, set] = {}
    for _ in range(300):
        arch = space.sample(rng)
        by_key.setdefault(arch.key(), set()).add(arch)
    for key, archs in by_key.items():
        if len(archs) > 1:  # only head counts of attention-free models may differ under one key
            assert {dataclasses.replace(a, num_heads=1) for a in archs} == {
                dataclasses.replace(next(iter(archs)), num_heads=1)
            }
            assert not next(iter(archs)).has_attention and "_h-_" in key


def test_samples_stay_inside_the_space_and_match_its_json_schema() -> None:
    space = UNetSpace(image_size=32, base_channels=(16, 32), num_levels=(2, 3, 4))
    schema = space.json_schema()
    rng = np.random.default_rng(1)
    for _ in range(100):
        arch = space.sample(rng)
        assert space.validate(arch.to_dict()) == arch
        jsonschema.validate(arch.to_dict(), schema)
        assert arch.base_channels in (16, 32) and arch.num_levels in (2, 3, 4)
        assert set(arch.attention_resolutions) <= set(arch.resolutions(32)) & {8, 4, 2}


def test_sampling_is_reproducible_with_a_seed() -> None:
    space = UNetSpace(image_size=16)
    first = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    second = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert first == second


def test_validate_rejects_values_outside_the_space_naming_allowed_values() -> None:
    space = UNetSpace(image_size=16, base_channels=(16, 32))
    with pytest.raises(ConfigError, match=r"base_channels=24 is not allowed; allowed values: \[16, 32\]"):
        space.validate({"base_channels": 24, "channel_mult": [1, 2], "num_res_blocks": 1, "attention_resolutions": []})


def test_param_space_draws_architectures_through_tune_reproducibly() -> None:
    from ray.tune.search.variant_generator import generate_variants

    space = UNetSpace(image_size=8)
    config = space.param_space(dataset="digits", lr=tune.loguniform(1e-4, 1e-2))
    assert config["dataset"] == "digits" and config["image_size"] == 8
    assert UNetSpace.from_dict(config["space"]) == space

    def draw(seed: int) -> list[dict]:
        rng = np.random.default_rng(seed)
        return [resolved for _ in range(5) for _, resolved in generate_variants(config, random_state=rng)]

    first, again, other = draw(0), draw(0), draw(1)
    assert [c["arch"] for c in first] == [c["arch"] for c in again]
    assert [c["arch"] for c in first] != [c["arch"] for c in other]
    for resolved in first:
        space.validate(resolved["arch"])
        assert 1e-4 <= resolved["lr"] <= 1e-2


def test_param_space_rejects_unknown_training_settings() -> None:
    with pytest.raises(ConfigError, match=r"Unknown training setting\(s\) \['learning_rate'\]"):
        UNetSpace(image_size=8).param_space(dataset="digits", learning_rate=0.1)


def test_description_mentions_every_field_for_the_llm() -> None:
    text = UNetSpace(image_size=16).describe()
    for field in UNetArch.field_names():
        assert field in text


def test_a_cost_bound_keeps_the_space_to_architectures_within_it() -> None:
    bounded = UNetSpace(image_size=16, max_gflops=0.05)
    rng = np.random.default_rng(0)
    draws = [bounded.sample(rng) for _ in range(50)]
    assert all(unet_gflops(arch, 16) <= 0.05 for arch in draws)
    costly = UNetSpace(image_size=16).validate(
        {
            "base_channels": 32,
            "channel_mult": [1, 3, 4, 4],
            "num_res_blocks": 2,
            "attention_resolutions": [],
            "mid_attention": False,
        }
    )
    with pytest.raises(ConfigError, match=r"GFLOPs per image, above this space's bound max_gflops=0\.05"):
        bounded.validate(costly.to_dict())
    assert all(unet_gflops(bounded.mutate(arch, rng), 16) <= 0.05 for arch in draws[:10])
    assert "at most 0.05 GFLOPs" in bounded.describe()
    # The bound travels with the space (trials and searchers rebuild it); a space without one keeps its old dict.
    assert UNetSpace.from_dict(bounded.to_dict()) == bounded
    assert "max_gflops" not in UNetSpace(image_size=16).to_dict()


def test_a_cost_bound_no_architecture_meets_is_refused_with_the_cheapest_cost() -> None:
    with pytest.raises(ConfigError, match=r"the cheapest \(c8_m1-1_r1-1_anone_h-_d0_mid0\) costs 0\.0039"):
        UNetSpace(image_size=16, max_gflops=0.001)
    with pytest.raises(ConfigError, match="max_gflops must be a number > 0"):
        UNetSpace(image_size=16, max_gflops=-1)


def test_a_bounded_enumeration_lists_only_the_architectures_within_the_bound() -> None:
    from ray_diffnas.spaces.unet_bench import bench_space

    everything = bench_space(8).enumerate()
    bound = float(np.median([unet_gflops(arch, 8) for arch in everything]))
    kept = UNetSpace.from_dict({**bench_space(8).to_dict(), "max_gflops": bound}).enumerate()
    assert kept == [arch for arch in everything if unet_gflops(arch, 8) <= bound]
    assert 0 < len(kept) < len(everything)


@pytest.mark.parametrize("spec", ["unet:8", "unet:16", "unet-bench:8", "nb201"])
def test_the_local_llms_grammar_constrains_every_field_of_the_proposals(spec: str) -> None:
    """llama.cpp turns the proposals' JSON schema into a grammar; a part of the schema it does not
    understand becomes "any JSON value", and the local model then writes proposals that can never be
    valid (it did for the bench space's attention-free levels)."""
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar", reason="needs the local-llm extra")
    import json

    from ray_diffnas.searchers.llm.prompt import proposals_schema
    from ray_diffnas.spaces.registry import space_from_spec

    space = space_from_spec(spec)
    grammar = llama_grammar.json_schema_to_gbnf(json.dumps(proposals_schema(space, 4)))
    assert "value ::=" not in grammar  # no field left open to any JSON value


def test_an_attention_free_level_admits_only_the_empty_attention_list() -> None:
    from ray_diffnas.spaces.registry import space_from_spec

    space = space_from_spec("unet-bench:8")
    arch = space.sample(np.random.default_rng(0)).to_dict()
    jsonschema.validate(arch, space.json_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**arch, "attention_resolutions": [[0.001]]}, space.json_schema())
