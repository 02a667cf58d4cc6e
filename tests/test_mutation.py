"""Mutation, the fallback move of the model-based searchers: one small edit, inside the space."""

from __future__ import annotations

import numpy as np
import pytest

from ray_diffnas.spaces.nb201 import NB201Space
from ray_diffnas.spaces.unet_arch import UNetArch
from ray_diffnas.spaces.unet_mutation import FIELDS, mutate
from ray_diffnas.spaces.unet_space import UNetSpace

SPACES = [UNetSpace(image_size=16), UNetSpace(image_size=32, base_channels=(16, 32), num_res_blocks=(1, 2, 3))]


def _changed_fields(a: UNetArch, b: UNetArch) -> set[str]:
    return {name for name in UNetArch.field_names() if getattr(a, name) != getattr(b, name)}


@pytest.mark.parametrize("space", SPACES, ids=["16px", "32px"])
def test_a_unet_child_is_new_valid_and_a_small_step(space: UNetSpace) -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        parent = space.sample(rng)
        child = mutate(parent, space, rng)
        assert child != parent and space.validate(child.to_dict()) == child
        changed = _changed_fields(parent, child)
        # One edit; a level added or removed also changes the per-level lists (and may drop attention sizes).
        assert (
            changed and changed <= {"channel_mult", "num_res_blocks", "attention_resolutions"} or len(changed) == 1
        ), changed
        if space.first_mult_is_one:
            assert child.channel_mult[0] == 1
        assert len(child.channel_mult) == len(child.num_res_blocks)


def test_unet_mutation_reaches_every_field_and_is_reproducible() -> None:
    space = SPACES[1]
    seen: set[str] = set()
    rng = np.random.default_rng(1)
    for _ in range(400):
        parent = space.sample(rng)
        seen |= _changed_fields(parent, mutate(parent, space, rng))
    assert seen >= {
        "base_channels",
        "channel_mult",
        "num_res_blocks",
        "attention_resolutions",
        "num_heads",
        "dropout",
        "mid_attention",
    }
    assert set(FIELDS) >= {"levels"}
    parent = space.sample(np.random.default_rng(2))
    assert mutate(parent, space, np.random.default_rng(3)) == mutate(parent, space, np.random.default_rng(3))


def test_unet_mutation_of_a_space_with_one_point_falls_back_to_a_sample() -> None:
    space = UNetSpace(
        image_size=8,
        base_channels=(8,),
        channel_mults=(1,),
        num_levels=(2,),
        num_res_blocks=(1,),
        num_heads=(1,),
        dropout=(0.0,),
        mid_attention=(False,),
        attention_max_resolution=0,
    )
    only = space.sample(np.random.default_rng(0))
    assert mutate(only, space, np.random.default_rng(0)) == only  # nothing else exists


def test_nb201_mutation_changes_exactly_one_edge() -> None:
    space, rng = NB201Space(), np.random.default_rng(0)
    for _ in range(200):
        parent = space.sample(rng)
        child = space.mutate(parent, rng)
        assert sum(a != b for a, b in zip(parent.ops, child.ops)) == 1 and space.validate(child) == child
    single = NB201Space(operations=("none",))
    cell = single.sample(rng)
    assert single.mutate(cell, rng) == cell


def test_a_fallback_whose_parents_neighbourhoods_are_spent_is_a_fresh_untried_sample() -> None:
    # The model searchers' fallback in a small space (the 320-row UNet bench table): once every mutation
    # of the parents was tried, a new sample keeps the search going instead of a repeat ending it.
    from ray_diffnas.searchers.llm.searcher import GPT4Searcher
    from ray_diffnas.spaces.unet_bench import bench_space

    space = bench_space(8)
    searcher = GPT4Searcher(space=space, metric="rfid", mode="min", base_url="http://127.0.0.1:9/v1")
    parent = space.sample(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    tried = {parent.key(): parent} | {a.key(): a for a in (space.mutate(parent, rng) for _ in range(500))}
    for i, arch in enumerate(tried.values()):
        searcher.memory.propose(f"t{i}", {"arch": arch.to_dict()}, arch.key(), "user")
    assert searcher._neighbour([parent.to_dict()], set()).key() in tried  # every neighbour is spent
    fresh = searcher._new_neighbour([parent.to_dict()], set())
    assert fresh.key() not in tried and space.validate(fresh.to_dict()) == fresh


def test_the_llm_fallback_mutates_feasible_parents_only() -> None:
    # With a constraint, the best RFID can come from a trial that broke it: mutating that trial would
    # spend the fallback's trials next to an infeasible architecture. The parents are the best feasible
    # trials, the rule the graph searcher uses (MemorySearcher._best_feasible).
    from ray_diffnas.searchers.llm.searcher import GPT4Searcher

    space = NB201Space()
    searcher = GPT4Searcher(space=space, metric="acc", mode="max", constraints={"latency_ms": 5.0},
                            base_url="http://127.0.0.1:9/v1", max_retries=0, seed=0)  # fmt: skip
    fast, slow = ("none",) * 6, ("nor_conv_3x3",) * 6  # six edits apart: their neighbours never meet
    for i, (ops, acc, ms) in enumerate([(slow, 90.0, 9.0), (fast, 60.0, 2.0)]):
        arch = space.validate({"ops": list(ops)})
        searcher.memory.propose(f"w{i}", {"arch": arch.to_dict()}, arch.key(), "user")
        searcher.memory.complete(f"w{i}", {"acc": acc, "latency_ms": ms, "training_iteration": 1}, "completed")
    for i in range(12):
        child = space.validate(searcher.suggest(f"t{i}")["arch"]).ops
        assert searcher.memory.get(f"t{i}").proposer == "fallback"
        assert sum(a != b for a, b in zip(child, fast)) == 1  # a mutation of the feasible one
