"""Small random edits of an architecture: the fallback proposer's move (a step to a neighbour)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ray_diffnas.errors import ConfigError
from ray_diffnas.spaces.unet_arch import UNetArch

if TYPE_CHECKING:
    from ray_diffnas.spaces.unet_space import UNetSpace

FIELDS = (
    "base_channels",
    "levels",
    "channel_mult",
    "num_res_blocks",
    "attention_resolutions",
    "num_heads",
    "dropout",
    "mid_attention",
)


def mutate(arch: UNetArch, space: UNetSpace, rng: np.random.Generator, tries: int = 30) -> UNetArch:
    """Changes one field of ``arch`` to a neighbouring value inside ``space``.

    Example:
        >>> from ray_diffnas.spaces.unet_space import UNetSpace
        >>> space = UNetSpace(image_size=16)
        >>> parent = space.sample(np.random.default_rng(0))
        >>> child = mutate(parent, space, np.random.default_rng(1))
        >>> child != parent and space.validate(child.to_dict()) == child
        True
    """
    for _ in range(tries):
        values = arch.to_dict()
        _edit(values, str(rng.choice(FIELDS)), space, rng)
        try:
            child = space.validate(values)
        except ConfigError:
            continue
        if child != arch:
            return child
    return space.sample(rng)


def _neighbour(value: object, allowed: list, rng: np.random.Generator) -> object:
    if value not in allowed:
        return allowed[int(rng.integers(len(allowed)))]
    i = allowed.index(value) + int(rng.choice([-1, 1]))
    return allowed[min(max(i, 0), len(allowed) - 1)]


def _edit(values: dict, field: str, space: UNetSpace, rng: np.random.Generator) -> None:
    c = space.choices
    levels = len(values["channel_mult"])
    if field == "levels":
        if rng.random() < 0.5 and levels + 1 in c["num_levels"]:
            values["channel_mult"].append(values["channel_mult"][-1])
            values["num_res_blocks"].append(values["num_res_blocks"][-1])
        elif levels - 1 in c["num_levels"]:
            values["channel_mult"].pop()
            values["num_res_blocks"].pop()
        smallest = space.image_size // 2 ** (len(values["channel_mult"]) - 1)
        values["attention_resolutions"] = [r for r in values["attention_resolutions"] if r >= smallest]
    elif field in ("channel_mult", "num_res_blocks"):
        first = 1 if field == "channel_mult" and space.first_mult_is_one and levels > 1 else 0
        i = int(rng.integers(first, levels))
        values[field][i] = _neighbour(values[field][i], c[field], rng)
    elif field == "attention_resolutions":
        sizes = [space.image_size // 2**level for level in range(levels)]
        options = [r for r in sizes if r in c["attention_resolutions"]]
        if options:
            r = int(rng.choice(options))
            current = set(values[field])
            values[field] = sorted(current ^ {r}, reverse=True)
    elif field == "mid_attention":
        values[field] = not values[field] if len(c[field]) > 1 else values[field]
    else:
        values[field] = _neighbour(values[field], c[field], rng)
