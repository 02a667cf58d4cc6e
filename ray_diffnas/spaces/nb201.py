"""NB201Space: the NAS-Bench-201 cell, so searchers can be judged on a published tabular benchmark.

A cell has 4 nodes; each of the 6 edges i -> j (i < j) carries one operation. Architectures are
written as in NAS-Bench-201: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (the edges into node 1, into
node 2, into node 3). As a graph (the DiNAS encoding) each operation is a node: 8 nodes (input,
the 6 edge operations, output) with a fixed directed wiring.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ray_diffnas.errors import ConfigError

if TYPE_CHECKING:  # torch-geometric is imported only when a graph is asked for
    from torch_geometric.data import Data

OPERATIONS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))  # the order of an architecture string


@dataclass(frozen=True)
class NB201Arch:
    """One NAS-Bench-201 cell: the operation on each of its 6 edges, in string order.

    Example:
        >>> cell = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
        >>> arch = NB201Arch.from_string(cell)
        >>> arch.ops[:2]
        ('nor_conv_3x3', 'none')
        >>> arch.key() == arch.to_string()
        True
    """

    ops: tuple[str, ...]

    @classmethod
    def from_string(cls, text: str) -> NB201Arch:
        if not isinstance(text, str):
            raise ConfigError(f"A NAS-Bench-201 architecture string must be a str, but got {text!r}.")
        nodes = text.strip().split("+")
        ops: list[str] = []
        for target, node in enumerate(nodes, start=1):
            parts = [p for p in node.strip().strip("|").split("|") if p]
            for source, part in enumerate(parts):
                op, _, index = part.partition("~")
                if index != str(source):
                    raise ConfigError(
                        f"NAS-Bench-201 string {text!r}: entry {part!r} of node {target} should read '{op}~{source}'."
                    )
                ops.append(op)
            if len(parts) != target:
                raise ConfigError(
                    f"NAS-Bench-201 string {text!r}: node {target} needs {target} inputs, got {len(parts)}."
                )
        if len(nodes) != 3:
            raise ConfigError(
                f"NAS-Bench-201 string {text!r} must have 3 '+'-separated nodes, got {len(nodes)}; "
                f"e.g. '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|avg_pool_3x3~2|'."
            )
        return cls(tuple(ops))

    def to_string(self) -> str:
        parts, i = [], 0
        for target in (1, 2, 3):
            parts.append("|" + "|".join(f"{self.ops[i + s]}~{s}" for s in range(target)) + "|")
            i += target
        return "+".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"ops": list(self.ops)}

    def key(self) -> str:
        return self.to_string()


class NB201Space:
    """The NAS-Bench-201 cell space (5^6 = 15,625 cells), a search space and a :class:`GraphSpace`.

    Accepts an architecture as its string, as ``{"cell": string}`` or as ``{"ops": [6 names]}``.

    Example:
        >>> space = NB201Space()
        >>> arch = space.sample(np.random.default_rng(0))
        >>> space.decode(space.encode(arch)) == arch
        True
        >>> len(space.node_classes), space.max_nodes
        (7, 8)
    """

    kind = "nb201"
    node_classes = ["input", "output", *OPERATIONS]
    edge_classes = ["none", "flow"]
    max_nodes = 8

    def __init__(self, operations: Sequence[str] = OPERATIONS) -> None:
        unknown = sorted(set(operations) - set(OPERATIONS))
        if unknown or not operations:
            raise ConfigError(
                f"NB201Space operations must be a non-empty subset of {list(OPERATIONS)}, but got {list(operations)!r}."
            )
        self.operations = [op for op in OPERATIONS if op in operations]

    # --- membership and sampling ------------------------------------------------------------

    def validate(self, values: Any) -> NB201Arch:
        if isinstance(values, NB201Arch):
            arch = values
        elif isinstance(values, str):
            arch = NB201Arch.from_string(values)
        elif isinstance(values, Mapping) and "cell" in values:
            arch = NB201Arch.from_string(values["cell"])
        elif isinstance(values, Mapping) and "ops" in values:
            ops = values["ops"]
            if not isinstance(ops, (list, tuple)) or len(ops) != len(EDGES) or not all(isinstance(o, str) for o in ops):
                raise ConfigError(
                    f"NAS-Bench-201 'ops' must be a list of {len(EDGES)} operation names "
                    f"(edges {list(EDGES)}), but got {ops!r}."
                )
            arch = NB201Arch(tuple(ops))
        else:
            raise ConfigError(
                f"A NAS-Bench-201 architecture must be its string, {{'cell': string}} or "
                f"{{'ops': [6 names]}}, but got {values!r}."
            )
        outside = sorted({op for op in arch.ops if op not in self.operations})
        if outside:
            raise ConfigError(f"Operations {outside} are not in this space; allowed operations: {self.operations}.")
        return arch

    def key(self, values: Any) -> str:
        return self.validate(values).key()

    def sample(self, rng: np.random.Generator) -> NB201Arch:
        return NB201Arch(tuple(str(rng.choice(self.operations)) for _ in EDGES))

    def mutate(self, arch: NB201Arch, rng: np.random.Generator) -> NB201Arch:
        """Changes the operation on one edge (a step to a neighbour)."""
        if len(self.operations) < 2:
            return arch
        ops = list(arch.ops)
        i = int(rng.integers(len(ops)))
        ops[i] = str(rng.choice([op for op in self.operations if op != ops[i]]))
        return NB201Arch(tuple(ops))

    def flat_choices(self) -> dict[str, list[str]]:
        """One categorical parameter per edge (for searchers that need flat spaces, e.g. Optuna)."""
        return {f"edge_{i}_{j}": list(self.operations) for i, j in EDGES}

    def from_flat(self, values: Mapping[str, Any]) -> NB201Arch:
        missing = [name for name in self.flat_choices() if name not in values]
        if missing:
            raise ConfigError(f"A flat NAS-Bench-201 config needs {list(self.flat_choices())}; {missing} are missing.")
        return self.validate({"ops": [values[name] for name in self.flat_choices()]})

    def param_space(self, **extra: Any) -> dict[str, Any]:
        """A Tune ``param_space`` whose ``arch`` this space samples (see :class:`ArchDomain`)."""
        from ray_diffnas.spaces.domain import ArchDomain

        return {**extra, "arch": ArchDomain(self), "space": self.to_dict()}

    # --- graph encoding ---------------------------------------------------------------------

    def encode(self, values: Any) -> Data:
        from ray_diffnas.spaces.graphs import make_graph

        arch = self.validate(values)
        nodes = [0] + [self.node_classes.index(op) for op in arch.ops] + [1]
        return make_graph(nodes, [(s, t, 1) for s, t in _wiring()])

    def decode(self, graph: Data) -> NB201Arch | None:
        from ray_diffnas.spaces.graphs import graph_edges

        x = graph.x.tolist()
        if (
            len(x) != self.max_nodes
            or x[0] != 0
            or x[-1] != 1
            or graph_edges(graph) != {(s, t, 1) for s, t in _wiring()}
        ):
            return None
        ops = [self.node_classes[c] for c in x[1:-1]]
        if any(op not in self.operations for op in ops):
            return None
        return NB201Arch(tuple(ops))

    # --- descriptions -------------------------------------------------------------------------

    def describe(self) -> str:
        return "\n".join(
            [
                "A NAS-Bench-201 cell: 4 nodes, node 0 is the input and node 3 the output; every edge i -> j "
                "(i < j) applies one operation and each node sums its inputs.",
                f"- ops: the operation on each of the 6 edges in the order {list(EDGES)}; "
                f"each one of {self.operations}.",
                "'none' removes the edge; convolutions add capacity and latency; skip_connect and pooling are cheap.",
            ]
        )

    def json_schema(self) -> dict[str, Any]:
        op = {"type": "string", "enum": self.operations}
        return {
            "title": "NB201Arch",
            "type": "object",
            "additionalProperties": False,
            "required": ["ops"],
            "properties": {
                "ops": {
                    "type": "array",
                    "prefixItems": [op] * len(EDGES),
                    "items": False,
                    "minItems": len(EDGES),
                    "maxItems": len(EDGES),
                }
            },
        }

    @staticmethod
    def field_names() -> list[str]:
        return ["ops"]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "operations": list(self.operations)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> NB201Space:
        values = {k: v for k, v in values.items() if k != "kind"}
        return cls(**values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NB201Space) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"NB201Space({json.dumps(self.to_dict())})"


def _wiring() -> list[tuple[int, int]]:
    """Directed edges between the operation nodes: input -> ops out of cell node 0, op into
    cell node k -> ops out of node k, ops into node 3 -> output. Node 1 + e is edge e."""
    wires = []
    for e, (source, _) in enumerate(EDGES):
        if source == 0:
            wires.append((0, 1 + e))
        else:
            wires += [(1 + f, 1 + e) for f, (_, target) in enumerate(EDGES) if target == source]
    wires += [(1 + e, 7) for e, (_, target) in enumerate(EDGES) if target == 3]
    return wires
