"""What a searcher may know of a space: the ``SearchSpace`` protocol, and ``GraphSpace`` on top of it.

Searchers, the search memory and the LLM's prompt are written against these protocols alone, so
they run on any space that implements them: :class:`~ray_diffnas.spaces.unet_space.UNetSpace`
(UNet denoisers), :class:`~ray_diffnas.spaces.nb201.NB201Space` (NAS-Bench-201 cells), or a
user's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # graphs are built only when a graph searcher asks for them
    from torch_geometric.data import Data


@runtime_checkable
class Architecture(Protocol):
    """One point of a space: hashable, with a canonical key and a JSON-able form."""

    def key(self) -> str:
        """A canonical string: two spellings of the same network have the same key."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values that the space's ``validate`` takes back."""
        ...


@runtime_checkable
class SearchSpace(Protocol):
    """A set of architectures a searcher may propose, and what it says of itself.

    ``describe`` and ``json_schema`` are what an LLM reads; ``sample`` and ``mutate`` are the
    moves of random and local search; ``to_dict`` (with ``kind``) is how checkpoints, Tune's
    ``param_space`` and table trials carry the space (see :mod:`ray_diffnas.spaces.registry`).
    """

    kind: str

    def validate(self, values: Any) -> Any:
        """The architecture ``values`` describe, checked to be inside the space.

        Raises:
            ConfigError: naming what is outside the space and what is allowed.
        """
        ...

    def key(self, values: Any) -> str:
        """The canonical key of a valid architecture."""
        ...

    def sample(self, rng: np.random.Generator) -> Any:
        """One random architecture of the space."""
        ...

    def mutate(self, arch: Any, rng: np.random.Generator) -> Any:
        """A neighbour of ``arch`` inside the space (one small edit)."""
        ...

    def describe(self) -> str:
        """Plain language: what an architecture is and what each field may be."""
        ...

    def json_schema(self) -> dict[str, Any]:
        """JSON schema of one architecture (for structured LLM output)."""
        ...

    def field_names(self) -> list[str]:
        """The fields of an architecture's dict, all of which a complete answer gives."""
        ...

    def param_space(self, **extra: Any) -> dict[str, Any]:
        """A Tune ``param_space`` whose ``arch`` this space samples."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The space's arguments, JSON-able, with its ``kind``."""
        ...


@runtime_checkable
class GraphSpace(SearchSpace, Protocol):
    """A space whose architectures are graphs: what the graph diffusion searcher needs.

    A graph is a ``torch_geometric.data.Data`` with ``x`` (node class indices, shape ``[n]``),
    ``edge_index`` (shape ``[2, m]``, directed: source row 0, target row 1) and ``edge_attr``
    (edge class indices >= 1, shape ``[m]``); edge class 0 means "no edge" and is never stored.
    """

    node_classes: list[str]  # names of the categorical node classes
    edge_classes: list[str]  # names of the edge classes; index 0 is "no edge"
    max_nodes: int

    def encode(self, values: Mapping[str, Any] | Any) -> Data:
        """An architecture (record or its dict) as a graph."""
        ...

    def decode(self, graph: Data) -> Any | None:
        """The architecture a graph describes, or None when the graph is not one of the space."""
        ...
