"""The ``GraphSpace`` protocol: architectures as graphs with categorical nodes and edges.

A graph is a ``torch_geometric.data.Data`` with ``x`` (node class indices, shape ``[n]``),
``edge_index`` (shape ``[2, m]``, directed: source row 0, target row 1) and ``edge_attr`` (edge
class indices >= 1, shape ``[m]``). Edge class 0 means "no edge" and is never stored. The graph
diffusion model works on the dense form (:func:`to_dense`), padded to the space's ``max_nodes``.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import torch
from torch_geometric.data import Data


@runtime_checkable
class GraphSpace(Protocol):
    """What the graph diffusion searcher needs to know about a space (and nothing more)."""

    node_classes: list[str]  # names of the categorical node classes
    edge_classes: list[str]  # names of the edge classes; index 0 is "no edge"
    max_nodes: int

    def encode(self, values: Mapping[str, Any] | Any) -> Data:
        """An architecture (record or its dict) as a graph."""

    def decode(self, graph: Data) -> Any | None:
        """The architecture a graph describes, or None when the graph is not one of the space."""


def make_graph(node_classes: Sequence[int], edges: Sequence[tuple[int, int, int]]) -> Data:
    """A ``Data`` graph from node class indices and ``(source, target, edge_class)`` triples."""
    edge_index = torch.tensor([[s for s, _, _ in edges], [t for _, t, _ in edges]], dtype=torch.long).view(2, -1)
    return Data(x=torch.tensor(list(node_classes), dtype=torch.long),
                edge_index=edge_index,
                edge_attr=torch.tensor([c for _, _, c in edges], dtype=torch.long),
                num_nodes=len(node_classes))


def graph_edges(graph: Data) -> set[tuple[int, int, int]]:
    """The graph's ``(source, target, edge_class)`` triples."""
    src, dst = graph.edge_index.tolist() if graph.edge_index.numel() else ([], [])
    return set(zip(src, dst, graph.edge_attr.tolist()))


def to_dense(graphs: Sequence[Data], max_nodes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pads graphs into class-index tensors.

    Returns:
        ``X`` (B, N) node classes, ``E`` (B, N, N) edge classes (``E[b, i, j]`` for the edge
        i -> j, 0 = none), ``mask`` (B, N) true for real nodes.
    """
    batch = len(graphs)
    X = torch.zeros(batch, max_nodes, dtype=torch.long)
    E = torch.zeros(batch, max_nodes, max_nodes, dtype=torch.long)
    mask = torch.zeros(batch, max_nodes, dtype=torch.bool)
    for b, graph in enumerate(graphs):
        n = int(graph.num_nodes)
        if n > max_nodes:
            raise ValueError(f"a graph has {n} nodes, more than the space's max_nodes={max_nodes}")
        X[b, :n] = graph.x
        mask[b, :n] = True
        if graph.edge_index.numel():
            E[b, graph.edge_index[0], graph.edge_index[1]] = graph.edge_attr
    return X, E, mask


def from_dense(X: torch.Tensor, E: torch.Tensor, mask: torch.Tensor) -> list[Data]:
    """Inverse of :func:`to_dense` (padding dropped; self-loops kept so decoders can reject them)."""
    graphs = []
    for x, e, m in zip(X, E, mask):
        n = int(m.sum())
        sub = e[:n, :n]
        src, dst = sub.nonzero(as_tuple=True)
        graphs.append(Data(x=x[:n].clone(), edge_index=torch.stack([src, dst]),
                           edge_attr=sub[src, dst].clone(), num_nodes=n))
    return graphs
