"""Graphs of architectures: built from class indices, compared by their edges, padded to dense form.

A graph is a ``torch_geometric.data.Data`` (see :class:`~ray_diffnas.spaces.protocol.GraphSpace`).
The graph diffusion model works on the dense form (:func:`to_dense`), padded to the space's
``max_nodes``; torch-geometric's own converters do the padding and its inverse.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import dense_to_sparse, to_dense_adj, to_dense_batch


def make_graph(node_classes: Sequence[int], edges: Sequence[tuple[int, int, int]]) -> Data:
    """A ``Data`` graph from node class indices and ``(source, target, edge_class)`` triples."""
    edge_index = torch.tensor([[s for s, _, _ in edges], [t for _, t, _ in edges]], dtype=torch.long).view(2, -1)
    return Data(
        x=torch.tensor(list(node_classes), dtype=torch.long),
        edge_index=edge_index,
        edge_attr=torch.tensor([c for _, _, c in edges], dtype=torch.long),
        num_nodes=len(node_classes),
    )


def graph_edges(graph: Data) -> set[tuple[int, int, int]]:
    """The graph's ``(source, target, edge_class)`` triples."""
    src, dst = graph.edge_index.tolist() if graph.edge_index.numel() else ([], [])
    return set(zip(src, dst, graph.edge_attr.tolist()))


def to_dense(graphs: Sequence[Data], max_nodes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pads graphs into class-index tensors.

    Returns:
        ``X`` (B, N) node classes, ``E`` (B, N, N) edge classes (``E[b, i, j]`` for the edge
        i -> j, 0 = none), ``mask`` (B, N) true for real nodes.

    Example:
        >>> X, E, mask = to_dense([make_graph([2, 0], [(0, 1, 1)])], max_nodes=3)
        >>> X.tolist(), E[0, 0, 1].item(), mask.tolist()
        ([[2, 0, 0]], 1, [[True, True, False]])
    """
    largest = max((int(g.num_nodes) for g in graphs), default=0)
    if largest > max_nodes:  # torch-geometric would drop the extra nodes without a word
        raise ValueError(f"a graph has {largest} nodes, more than the space's max_nodes={max_nodes}")
    if not graphs:
        return (
            torch.zeros(0, max_nodes, dtype=torch.long),
            torch.zeros(0, max_nodes, max_nodes, dtype=torch.long),
            torch.zeros(0, max_nodes, dtype=torch.bool),
        )
    batch = Batch.from_data_list(list(graphs))
    X, mask = to_dense_batch(batch.x, batch.batch, fill_value=0, max_num_nodes=max_nodes, batch_size=len(graphs))
    E = to_dense_adj(batch.edge_index, batch.batch, batch.edge_attr, max_num_nodes=max_nodes, batch_size=len(graphs))
    return X, E.long(), mask


def from_dense(X: torch.Tensor, E: torch.Tensor, mask: torch.Tensor) -> list[Data]:
    """Inverse of :func:`to_dense` (padding dropped; self-loops kept so decoders can reject them)."""
    graphs = []
    for x, e, m in zip(X, E, mask):
        n = int(m.sum())
        edge_index, edge_attr = dense_to_sparse(e[:n, :n])
        graphs.append(Data(x=x[:n].clone(), edge_index=edge_index, edge_attr=edge_attr.clone(), num_nodes=n))
    return graphs
