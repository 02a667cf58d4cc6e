"""The architecture record: one UNet denoiser, as a small validated JSON-able value."""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any, Mapping

from ray_diffnas.errors import ConfigError

MIN_LEVELS, MAX_LEVELS = 2, 5
MAX_CHANNELS = 1024


@dataclass(frozen=True)
class UNetArch:
    """A UNet denoiser architecture (the thing the search is over).

    Levels run from the full image resolution down: level ``i`` works at
    ``image_size // 2**i`` pixels with ``base_channels * channel_mult[i]`` channels.

    Example:
        >>> arch = UNetArch.from_dict({"base_channels": 16, "channel_mult": [1, 2],
        ...                            "num_res_blocks": 1, "attention_resolutions": [8]},
        ...                           image_size=16)
        >>> arch.key()
        'c16_m1-2_r1-1_a8_h4_d0_mid1'
        >>> arch.resolutions(16)
        [16, 8]
    """

    base_channels: int = 32  # Channels of the first level; a multiple of 8 (GroupNorm groups).
    channel_mult: tuple[int, ...] = (1, 2, 2)  # Per-level multipliers of base_channels (2-5 levels).
    num_res_blocks: tuple[int, ...] = (2, 2, 2)  # Residual blocks per level, one entry per level.
    attention_resolutions: tuple[int, ...] = (8,)  # Feature-map sizes (pixels) given self-attention.
    num_heads: int = 4  # Attention heads; must divide the channels of every attention level.
    dropout: float = 0.0  # Dropout inside residual blocks, in [0, 1).
    mid_attention: bool = True  # Self-attention in the bottleneck between the two middle blocks.

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], image_size: int) -> UNetArch:
        """Builds a validated record from plain values (lists, ints, floats, bools).

        ``num_res_blocks`` may be one int for every level. Missing fields take the defaults.

        Raises:
            ConfigError: naming every invalid field, its value and the allowed values.
        """
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"An architecture must be a dict of UNetArch fields {cls.field_names()}, "
                f"but got {type(values).__name__}: {values!r}."
            )
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ConfigError(f"Unknown architecture field(s) {unknown}; allowed fields are {cls.field_names()}.")
        problems: list[str] = []
        normalized = _normalize(dict(values), problems)
        if not problems:
            problems.extend(_structural_problems(normalized, image_size))
        if problems:
            raise ConfigError("Invalid UNet architecture:\n  - " + "\n  - ".join(problems))
        return cls(**normalized)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (lists, not tuples)."""
        out = dataclasses.asdict(self)
        for name in ("channel_mult", "num_res_blocks", "attention_resolutions"):
            out[name] = list(out[name])
        return out

    @property
    def num_levels(self) -> int:
        return len(self.channel_mult)

    def resolutions(self, image_size: int) -> list[int]:
        """Feature-map size of each level, full resolution first."""
        return [image_size // 2**level for level in range(self.num_levels)]

    def channels(self) -> list[int]:
        return [self.base_channels * mult for mult in self.channel_mult]

    def key(self) -> str:
        """A canonical, human-readable key: equal architectures have equal keys."""
        attention = "-".join(str(r) for r in self.attention_resolutions) or "none"
        heads = self.num_heads if self.has_attention else "-"  # without attention, heads change nothing
        return (
            f"c{self.base_channels}_m{'-'.join(map(str, self.channel_mult))}"
            f"_r{'-'.join(map(str, self.num_res_blocks))}_a{attention}"
            f"_h{heads}_d{self.dropout:g}_mid{int(self.mid_attention)}"
        )

    @property
    def has_attention(self) -> bool:
        return bool(self.attention_resolutions) or self.mid_attention


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _int_list(name: str, value: Any, problems: list[str]) -> tuple[int, ...] | None:
    if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value):
        problems.append(f"{name} must be a list of integers, but got {value!r}.")
        return None
    return tuple(int(v) for v in value)


def _normalize(values: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """Type checks and canonical forms (tuples, sorted attention sizes, broadcast blocks)."""
    out = {f.name: f.default for f in dataclasses.fields(UNetArch)}
    out.update(values)
    if not _is_int(out["base_channels"]):
        problems.append(f"base_channels must be an integer, but got {out['base_channels']!r}.")
    if not _is_int(out["num_heads"]):
        problems.append(f"num_heads must be an integer, but got {out['num_heads']!r}.")
    mult = _int_list("channel_mult", out["channel_mult"], problems)
    blocks = out["num_res_blocks"]
    if "num_res_blocks" not in values and mult is not None:
        blocks = [2] * len(mult)  # the default, one entry per level
    if _is_int(blocks) and mult is not None:
        blocks = [int(blocks)] * len(mult)  # type: ignore[arg-type]  # _is_int checked it
    out["channel_mult"] = mult
    out["num_res_blocks"] = _int_list("num_res_blocks", blocks, problems)
    attention = _int_list("attention_resolutions", out["attention_resolutions"], problems)
    out["attention_resolutions"] = tuple(sorted(set(attention), reverse=True)) if attention else ()
    if not isinstance(out["dropout"], numbers.Real) or isinstance(out["dropout"], bool):
        problems.append(f"dropout must be a number in [0, 1), but got {out['dropout']!r}.")
    else:
        out["dropout"] = float(out["dropout"])
    if not isinstance(out["mid_attention"], bool):
        problems.append(f"mid_attention must be true or false, but got {out['mid_attention']!r}.")
    return out


def _structural_problems(arch: dict[str, Any], image_size: int) -> list[str]:
    problems = []
    base, mult, blocks = arch["base_channels"], arch["channel_mult"], arch["num_res_blocks"]
    if base < 8 or base % 8 or base > MAX_CHANNELS:
        problems.append(f"base_channels must be a multiple of 8 in [8, {MAX_CHANNELS}], but got {base}.")
    if not MIN_LEVELS <= len(mult) <= MAX_LEVELS:
        problems.append(
            f"channel_mult must have {MIN_LEVELS} to {MAX_LEVELS} entries (one per level), "
            f"but got {len(mult)}: {list(mult)}."
        )
    bad_mult = [m for m in mult if not 1 <= m <= 16 or base * m > MAX_CHANNELS]
    if bad_mult:
        problems.append(
            f"channel_mult entries must be integers in [1, 16] with base_channels * mult <= "
            f"{MAX_CHANNELS}, but got {bad_mult}."
        )
    if len(blocks) != len(mult):
        problems.append(f"num_res_blocks must have one entry per level ({len(mult)}), but got {list(blocks)}.")
    if any(not 1 <= b <= 8 for b in blocks):
        problems.append(f"num_res_blocks entries must be in [1, 8], but got {list(blocks)}.")
    if not 0.0 <= arch["dropout"] < 1.0:
        problems.append(f"dropout must be in [0, 1), but got {arch['dropout']}.")
    levels = len(mult)
    if problems:
        return problems
    if image_size % 2 ** (levels - 1):
        problems.append(
            f"channel_mult has {levels} levels, so image_size must be divisible by "
            f"{2 ** (levels - 1)}, but image_size is {image_size}; use fewer levels."
        )
        return problems
    sizes = [image_size // 2**level for level in range(levels)]
    missing = [r for r in arch["attention_resolutions"] if r not in sizes]
    if missing:
        problems.append(
            f"attention_resolutions {missing} are not resolutions this model has; "
            f"allowed values are {sizes} (image_size {image_size}, {levels} levels)."
        )
    heads = arch["num_heads"]
    attention_channels = [base * mult[sizes.index(r)] for r in arch["attention_resolutions"] if r in sizes]
    if arch["mid_attention"]:
        attention_channels.append(base * mult[-1])
    if heads < 1 or any(c % heads for c in attention_channels):
        problems.append(
            f"num_heads must be >= 1 and divide the channels of every attention level "
            f"{sorted(set(attention_channels))}, but got {heads}; try 1, 2, 4 or 8."
        )
    return problems
