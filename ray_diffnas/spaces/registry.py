"""The one place that builds a space from its saved dict (``kind``) or its command-line spelling.

Every space class names itself with a ``kind`` and round-trips through ``to_dict`` /
``from_dict``: a searcher's checkpoint, a ``param_space`` and a table trial carry the space as
that dict, and this registry turns it back into the space.
"""

from __future__ import annotations

from typing import Any, Mapping

from ray_diffnas.errors import ConfigError
from ray_diffnas.spaces.nb201 import NB201Space
from ray_diffnas.spaces.protocol import SearchSpace
from ray_diffnas.spaces.unet_space import UNetSpace

SPACES: dict[str, Any] = {UNetSpace.kind: UNetSpace, NB201Space.kind: NB201Space}
# How the command line names a space (space_from_spec reads them).
SPACE_SPECS = (NB201Space.kind, f"{UNetSpace.kind}:IMAGE_SIZE")


def space_from_dict(values: Mapping[str, Any]) -> SearchSpace:
    """Rebuilds a space from its ``to_dict()`` (``kind`` picks the class; none means a UNetSpace).

    Example:
        >>> space_from_dict(NB201Space().to_dict()) == NB201Space()
        True
    """
    kind = values.get("kind", UNetSpace.kind)
    if kind not in SPACES:
        raise ConfigError(f"Unknown space kind {kind!r}; known kinds: {sorted(SPACES)}.")
    space: SearchSpace = SPACES[kind].from_dict(values)
    return space


def space_from_spec(spec: str) -> SearchSpace:
    """The search space a ``--space`` value names: ``nb201`` or ``unet:IMAGE_SIZE``.

    Example:
        >>> space_from_spec("nb201").operations
        ['none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3']
        >>> space_from_spec("unet:16").image_size
        16
    """
    name, _, argument = str(spec).strip().partition(":")
    if name == NB201Space.kind and not argument:
        return NB201Space()
    if name == UNetSpace.kind and argument.isdigit():
        return UNetSpace(image_size=int(argument))
    raise ConfigError(
        f"Unknown space {spec!r}; use 'nb201' (NAS-Bench-201 cells) or 'unet:IMAGE_SIZE' "
        f"(e.g. 'unet:32', with the architecture column holding UNetArch JSON dicts)."
    )
