"""The one place that builds a space from its saved dict (``kind``) or its command-line spelling.

Every space class names itself with a ``kind`` and round-trips through ``to_dict`` /
``from_dict``: a searcher's checkpoint, a ``param_space`` and a table trial carry the space as
that dict, and this registry turns it back into the space.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from ray_diffnas.errors import ConfigError
from ray_diffnas.spaces.nb201 import NB201Space
from ray_diffnas.spaces.protocol import SearchSpace
from ray_diffnas.spaces.unet_bench import BENCH_SPACE_KIND, bench_space
from ray_diffnas.spaces.unet_space import UNetSpace

SPACES: dict[str, Any] = {UNetSpace.kind: UNetSpace, NB201Space.kind: NB201Space}
# How the command line names a space (space_from_spec reads them).
SPACE_SPECS = (NB201Space.kind, f"{UNetSpace.kind}:IMAGE_SIZE", f"{BENCH_SPACE_KIND}:IMAGE_SIZE", "SPACE.json")


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
    """The search space a ``--space`` value names: ``nb201``, ``unet:IMAGE_SIZE`` (the default UNet
    space), ``unet-bench:IMAGE_SIZE`` (the shipped tables' space) or a JSON file of a space's ``to_dict()``.

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
    if name == BENCH_SPACE_KIND and argument.isdigit():
        return bench_space(int(argument))
    if str(spec).strip().endswith(".json"):
        return _space_from_file(Path(str(spec).strip()).expanduser())
    raise ConfigError(
        f"Unknown space {spec!r}; use 'nb201' (NAS-Bench-201 cells), 'unet:IMAGE_SIZE' "
        f"(e.g. 'unet:32', with the architecture column holding UNetArch JSON dicts), "
        f"'unet-bench:IMAGE_SIZE' or a .json file holding a space's to_dict()."
    )


def _space_from_file(path: Path) -> SearchSpace:
    try:
        values = json.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"Cannot read the space file {str(path)!r} ({error.strerror}); check the path.") from None
    except ValueError as error:
        raise ConfigError(f"The space file {str(path)!r} is not valid JSON ({error}).") from None
    if not isinstance(values, dict):
        raise ConfigError(f"The space file {str(path)!r} must hold one JSON object (a space's to_dict()).")
    try:
        return space_from_dict(values)
    except (KeyError, TypeError) as error:  # a missing or unknown constructor argument
        raise ConfigError(
            f"The space file {str(path)!r} does not describe a space ({type(error).__name__}: {error}); "
            f"write one with json.dump(space.to_dict(), file)."
        ) from None
