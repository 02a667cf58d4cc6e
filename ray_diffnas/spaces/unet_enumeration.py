"""Every architecture of a finite UNet space, and the space's flat form (one choice per parameter).

A tabular benchmark is *complete* for its space when it has a row for every architecture the
space admits: :func:`enumerate_space` lists them, each once (by canonical key). The flat form
(:func:`flat_choices`, :func:`from_flat`) is what searchers that need one categorical choice per
parameter (Optuna's samplers) search: entries a shorter network does not use are ignored, so
several flat configs can name one architecture.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from ray_diffnas.errors import ConfigError, DiffNASError
from ray_diffnas.spaces.unet_arch import UNetArch

if TYPE_CHECKING:
    from ray_diffnas.spaces.unet_space import UNetSpace

# Listing more architectures than this is a mistake (a default space has millions): say so instead.
ENUMERATION_LIMIT = 200_000


def count_upper_bound(space: UNetSpace) -> int:
    """The number of field combinations :func:`enumerate_space` walks (at least the space's size)."""
    c = space.choices
    total = 0
    for levels in c["num_levels"]:
        mults = len(c["channel_mult"]) ** (levels - 1) * (1 if space.first_mult_is_one else len(c["channel_mult"]))
        sizes = _attention_sizes(space, levels)
        total += (
            mults
            * len(c["num_res_blocks"]) ** levels
            * 2 ** len(sizes)
            * len(c["mid_attention"])
            * len(c["num_heads"])
            * len(c["dropout"])
        )
    return total * len(c["base_channels"])


def enumerate_space(space: UNetSpace) -> list[UNetArch]:
    """Every architecture of ``space``, once each, sorted by key.

    Example:
        >>> from ray_diffnas.spaces.unet_space import UNetSpace
        >>> space = UNetSpace(8, base_channels=(8,), channel_mults=(1, 2), num_levels=(2,),
        ...                   num_res_blocks=(1,), attention_max_resolution=0, num_heads=(1,),
        ...                   dropout=(0.0,), mid_attention=(False, True))
        >>> for arch in enumerate_space(space):
        ...     print(arch.key())
        c8_m1-1_r1-1_anone_h-_d0_mid0
        c8_m1-1_r1-1_anone_h1_d0_mid1
        c8_m1-2_r1-1_anone_h-_d0_mid0
        c8_m1-2_r1-1_anone_h1_d0_mid1

    Raises:
        ConfigError: when the space has more than ``ENUMERATION_LIMIT`` field combinations.
    """
    bound = count_upper_bound(space)
    if bound > ENUMERATION_LIMIT:
        raise ConfigError(
            f"The space has up to {bound:,} architectures, more than the {ENUMERATION_LIMIT:,} a table can list; "
            f"give each field a handful of values (e.g. the 'unet-bench:SIZE' space)."
        )
    found: dict[str, UNetArch] = {}
    for values in _combinations(space):
        try:
            arch = space.validate(values)
        except DiffNASError:  # e.g. a head count that does not divide an attention level's channels
            continue
        found.setdefault(arch.key(), arch)
    return [found[key] for key in sorted(found)]


def _combinations(space: UNetSpace) -> Iterator[dict[str, Any]]:
    c = space.choices
    for base, levels in itertools.product(c["base_channels"], c["num_levels"]):
        firsts = [1] if space.first_mult_is_one else c["channel_mult"]
        mults = [(first, *rest) for first in firsts for rest in itertools.product(c["channel_mult"], repeat=levels - 1)]
        sizes = _attention_sizes(space, levels)
        attentions = [subset for k in range(len(sizes) + 1) for subset in itertools.combinations(sizes, k)]
        for mult, blocks, attention, mid, dropout in itertools.product(
            mults,
            itertools.product(c["num_res_blocks"], repeat=levels),
            attentions,
            c["mid_attention"],
            c["dropout"],
        ):
            # Without attention the head count changes nothing: one record stands for all of them.
            heads = c["num_heads"] if attention or mid else c["num_heads"][:1]
            for head in heads:
                yield {
                    "base_channels": base,
                    "channel_mult": list(mult),
                    "num_res_blocks": list(blocks),
                    "attention_resolutions": list(attention),
                    "num_heads": head,
                    "dropout": dropout,
                    "mid_attention": mid,
                }


def _attention_sizes(space: UNetSpace, levels: int) -> list[int]:
    sizes = [space.image_size // 2**level for level in range(levels)]
    return [r for r in sizes if r in space.choices["attention_resolutions"]]


# --- the flat form ------------------------------------------------------------------------------


def flat_choices(space: UNetSpace) -> dict[str, list[Any]]:
    """One categorical parameter per field and level (for Optuna's samplers).

    ``mult_i`` and ``res_i`` are level i's multiplier and blocks, ``attn_R`` whether feature maps of
    R pixels get attention; entries for levels a network does not have are ignored.

    Example:
        >>> from ray_diffnas.spaces.unet_space import UNetSpace
        >>> sorted(flat_choices(UNetSpace(8, num_levels=(2,), attention_max_resolution=4)))
        ['attn_4', 'base_channels', 'dropout', 'mid_attention', 'mult_1', 'num_heads', 'num_levels', 'res_0', 'res_1']
    """
    c = space.choices
    deepest = max(c["num_levels"])
    out: dict[str, list[Any]] = {"base_channels": list(c["base_channels"]), "num_levels": list(c["num_levels"])}
    for level in range(0 if not space.first_mult_is_one else 1, deepest):
        out[f"mult_{level}"] = list(c["channel_mult"])
    for level in range(deepest):
        out[f"res_{level}"] = list(c["num_res_blocks"])
    for size in c["attention_resolutions"]:
        out[f"attn_{size}"] = [False, True]
    out.update({"num_heads": list(c["num_heads"]), "dropout": list(c["dropout"])})
    out["mid_attention"] = list(c["mid_attention"])
    return out


def from_flat(space: UNetSpace, values: Mapping[str, Any]) -> UNetArch:
    """The architecture a flat config names (validated against the space).

    Raises:
        ConfigError: for a missing entry, or a combination outside the space (e.g. a head count
            that does not divide an attention level's channels).
    """
    names = flat_choices(space)
    missing = [name for name in names if name not in values]
    if missing:
        raise ConfigError(f"A flat UNet config needs {list(names)}; {missing} are missing.")
    levels = int(values["num_levels"])
    mult = [1 if level == 0 and space.first_mult_is_one else int(values[f"mult_{level}"]) for level in range(levels)]
    sizes = _attention_sizes(space, levels)
    return space.validate(
        {
            "base_channels": int(values["base_channels"]),
            "channel_mult": mult,
            "num_res_blocks": [int(values[f"res_{level}"]) for level in range(levels)],
            "attention_resolutions": [r for r in sizes if bool(values[f"attn_{r}"])],
            "num_heads": int(values["num_heads"]),
            "dropout": float(values["dropout"]),
            "mid_attention": bool(values["mid_attention"]),
        }
    )
