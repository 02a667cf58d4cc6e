"""Spaces: what a searcher may propose.

``UNetArch`` / ``UNetSpace`` (UNet denoisers) and ``NB201Space`` (NAS-Bench-201 cells), the
``SearchSpace`` and ``GraphSpace`` protocols every searcher is written against, each space's graph
encoding and mutation, the Tune domain (``ArchDomain``) and the registry that rebuilds a space from
its saved dict. Importing this package imports neither torch nor torch-geometric (graphs are built
only when a graph is asked for), and its names load on first use, so that the command's parser
answers without importing Ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ray_diffnas.lazy import lazy_exports

_EXPORTS = {
    "ArchDomain": "domain",
    "Architecture": "protocol",
    "GraphSpace": "protocol",
    "NB201Arch": "nb201",
    "NB201Space": "nb201",
    "SearchSpace": "protocol",
    "UNetArch": "unet_arch",
    "UNetSpace": "unet_space",
    "space_from_dict": "registry",
    "space_from_spec": "registry",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:
    from ray_diffnas.spaces.domain import ArchDomain
    from ray_diffnas.spaces.nb201 import NB201Arch, NB201Space
    from ray_diffnas.spaces.protocol import Architecture, GraphSpace, SearchSpace
    from ray_diffnas.spaces.registry import space_from_dict, space_from_spec
    from ray_diffnas.spaces.unet_arch import UNetArch
    from ray_diffnas.spaces.unet_space import UNetSpace
